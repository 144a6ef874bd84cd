"""Runs in flight: 10,000 runs each waiting on a 30 s model call in one engine process.

    .venv/bin/python -m bench.inflight [--runs 10000] [--delay 30] [--backend sqlite|postgresql]

The fake Anthropic server (its own process) answers every call after `--delay` seconds. The
runs are recorded first (API only); then the engine starts and takes the whole backlog:
`loopllama serve` on SQLite (API and engine in one process) or one `loopllama worker` on
PostgreSQL, the SDKs on their aiohttp transport. Meanwhile the engine process's resident memory
(VmRSS) and the number of steps in flight (started, not finished) are sampled.

- Memory per run in flight = (RSS at the most runs in flight - RSS at the first sample with
  100 or more in flight) / (the difference in runs in flight).
- Added latency = each step's duration minus the model's fixed delay (from the database).

Prints the figures and writes bench/results/inflight-<backend>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

from sqlalchemy import create_engine, func, select
from tests.helpers import free_port

from bench.support import (
    environment,
    fake_provider,
    percentile,
    rss_kib,
    scratch_database,
    start,
    stop,
)
from bench.throughput import preload
from loopllama.store.db import sync_url
from loopllama.store.tables import runs, steps

RESULTS = Path(__file__).parent / "results"


def in_flight(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(steps).where(steps.c.finished_at.is_(None))
        ).scalar()


def completed(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(
            select(func.count()).select_from(runs).where(runs.c.status.in_(("completed", "failed")))
        ).scalar()


async def measure(backend: str, count: int, delay: float) -> dict:
    with fake_provider(delay) as provider_url, scratch_database(backend) as url:
        await preload(url, provider_url, count, agents=1)
        env = environment(
            url,
            provider_url,
            LOOPLLAMA_MAX_CONCURRENT_RUNS=str(count * 2),
            LOOPLLAMA_PROVIDER_MAX_CONNECTIONS=str(count * 2),
            LOOPLLAMA_MODEL_TIMEOUT=str(delay * 4),
        )
        if backend == "sqlite":
            engine_process = start(env, "serve", "--port", str(free_port()))
        else:
            engine_process = start(env, "worker", "--concurrency", str(count * 2))
        database = create_engine(sync_url(url))
        samples: list[tuple[int, int]] = []
        try:
            started = time.monotonic()
            while time.monotonic() - started < delay * 0.9:
                samples.append((in_flight(database), rss_kib(engine_process.pid)))
                await asyncio.sleep(0.25)
            deadline = time.monotonic() + delay * 4 + 120
            while completed(database) < count and time.monotonic() < deadline:
                await asyncio.sleep(1.0)
            with database.connect() as conn:
                durations = [
                    (row.finished_at - row.started_at).total_seconds()
                    for row in conn.execute(select(steps.c.started_at, steps.c.finished_at))
                    if row.finished_at is not None
                ]
                failed = conn.execute(
                    select(func.count()).select_from(runs).where(runs.c.status == "failed")
                ).scalar()
        finally:
            database.dispose()
            stop(engine_process)
    baseline = next(sample for sample in samples if sample[0] >= 100)
    peak = max(samples)
    added_ms = [(d - delay) * 1000 for d in durations]
    per_run = (peak[1] - baseline[1]) * 1024 / max(1, peak[0] - baseline[0])
    return {
        "backend": backend,
        "model_delay_s": delay,
        "runs": count,
        "max_runs_in_flight": peak[0],
        "engine_rss_mib_at_first_sample": round(baseline[1] / 1024, 1),
        "engine_rss_mib_at_max_in_flight": round(peak[1] / 1024, 1),
        "rss_kib_per_run_in_flight": round(per_run / 1024, 1),
        "completed_steps": len(durations),
        "failed_runs": failed,
        "added_latency_ms": {
            "p50": round(percentile(added_ms, 50), 1),
            "p99": round(percentile(added_ms, 99), 1),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--delay", type=float, default=30.0)
    parser.add_argument("--backend", default="sqlite")
    args = parser.parse_args()
    figures = asyncio.run(measure(args.backend, args.runs, args.delay))
    print(json.dumps(figures, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"inflight-{args.backend}.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
