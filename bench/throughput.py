"""Throughput with a zero-latency model: steps per second, SQLite in one process and
PostgreSQL with 1, 2 and 4 worker processes.

    .venv/bin/python -m bench.throughput [--runs 3000] [--agents 3] [--workers 1,2,4]
                                         [--backends sqlite,postgresql]

For each configuration: a fresh database; `--runs` runs of an `--agents`-agent workflow are
recorded first (API only), then the engine starts (`loopllama serve` on SQLite, `loopllama
worker` processes on PostgreSQL) and works through the backlog against a zero-latency fake
Anthropic server in its own process (the SDKs' aiohttp transport). Throughput = steps /
(last run finished - first step started), from the database's own timestamps; CPU per step from
/proc of the engine processes.

Prints the figures and writes bench/results/throughput.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import httpx
from sqlalchemy import create_engine, func, select

from bench.support import (
    cpu_seconds,
    environment,
    fake_provider,
    scratch_database,
    start,
    start_server,
    stop,
)
from loopllama.api.app import create_app
from loopllama.settings import DatabaseSettings, ProviderSettings, Settings
from loopllama.store.db import Database, sync_url
from loopllama.store.keys import create_key
from loopllama.store.tables import runs, steps

RESULTS = Path(__file__).parent / "results"


async def preload(database_url: str, provider_url: str, count: int, agents: int) -> None:
    """Record `count` queued runs (and their queue jobs) without executing any."""
    settings = Settings(
        database=DatabaseSettings(url=database_url),
        providers=ProviderSettings(anthropic_api_key="k", anthropic_base_url=provider_url),
    )
    db = Database(database_url, pool_size=1)
    async with db.write() as conn:
        _, key = await create_key(conn, "bench", None)
    await db.dispose()
    app = create_app(settings, migrate=False, run_engine=False)
    crew = [{"role": f"agent{i}", "systemPrompt": "Answer briefly."} for i in range(agents)]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers={"Authorization": f"Bearer {key}"}
        ) as http:
            workflow = (
                await http.post(
                    "/v1/workflows", json={"name": "b", "model": "claude-bench", "crew": crew}
                )
            ).json()["data"]
            for i in range(count):
                response = await http.post(
                    f"/v1/workflows/{workflow['id']}/runs", json={"input": f"r{i}"}
                )
                assert response.status_code == 202


def progress(database_url: str) -> tuple[int, int]:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            done = conn.execute(
                select(func.count()).select_from(runs).where(runs.c.status == "completed")
            ).scalar()
            failed = conn.execute(
                select(func.count()).select_from(runs).where(runs.c.status == "failed")
            ).scalar()
    finally:
        engine.dispose()
    return done, failed


def window_seconds(database_url: str) -> float:
    engine = create_engine(sync_url(database_url))
    try:
        with engine.connect() as conn:
            first = conn.execute(select(func.min(steps.c.started_at))).scalar()
            last = conn.execute(select(func.max(runs.c.finished_at))).scalar()
    finally:
        engine.dispose()
    return (last - first).total_seconds()


def measure(backend: str, workers: int, count: int, agents: int) -> dict:
    with fake_provider(0.0) as provider_url, scratch_database(backend) as url:
        asyncio.run(preload(url, provider_url, count, agents))
        env = environment(url, provider_url, LOOPLLAMA_MAX_CONCURRENT_RUNS="1000")
        if backend == "sqlite":
            server, _ = start_server(env)
            processes = [server]
        else:
            processes = [start(env, "worker") for _ in range(workers)]
        cpu_before = {p.pid: 0.0 for p in processes}
        try:
            started = time.monotonic()
            while True:
                done, failed = progress(url)
                if done + failed >= count:
                    break
                if time.monotonic() - started > 600:
                    raise RuntimeError(f"only {done} of {count} runs completed")
                time.sleep(0.2)
            cpu = sum(cpu_seconds(p.pid) - cpu_before[p.pid] for p in processes)
        finally:
            stop(*processes)
        seconds = window_seconds(url)
    total_steps = count * agents
    return {
        "backend": backend,
        "engine_processes": len(processes),
        "runs": count,
        "failed": failed,
        "steps": total_steps,
        "steps_per_s": round(total_steps / seconds, 1),
        "engine_cpu_ms_per_step": round(cpu * 1000 / total_steps, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--agents", type=int, default=3)
    parser.add_argument("--workers", default="1,2,4")
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    figures = []
    for backend in args.backends.split(","):
        counts = [1] if backend == "sqlite" else [int(n) for n in args.workers.split(",")]
        for workers in counts:
            result = measure(backend, workers, args.runs, args.agents)
            print(json.dumps(result))
            figures.append(result)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "throughput.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
