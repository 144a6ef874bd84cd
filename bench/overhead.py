"""Orchestration overhead per step and trigger latency, with a zero-latency model on loopback.

    .venv/bin/python -m bench.overhead [--runs 300] [--triggers 2000] [--database-url URL]

Overhead per step: 3-agent runs are triggered through the API (engine off), then advanced one at
a time by the engine; a timing wrapper around the real Anthropic adapter (SDK + HTTP to the fake
server) measures the model time, and overhead = (advance wall time - model time) / steps. It is
everything the engine does per step: claims, state writes, transcripts, step inputs.

Trigger latency: `POST /v1/workflows/{id}/runs` over real HTTP to `loopllama serve` (uvicorn,
a separate process) from one keep-alive client, sequentially (closed loop), run durably recorded
before the 202.

Prints the figures and writes them to bench/results/overhead-<backend>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from tests.fakes.provider_server import FakeProviderServer
from tests.helpers import LiveServer

from loopllama.api.app import create_app
from loopllama.providers.anthropic import AnthropicProvider
from loopllama.providers.base import ModelRequest, ModelResponse
from loopllama.providers.registry import ProviderRegistry
from loopllama.settings import DatabaseSettings, ProviderSettings, Settings
from loopllama.store.db import Database
from loopllama.store.keys import create_key
from loopllama.store.migrate import upgrade

CREW = [{"role": f"agent{i}", "systemPrompt": "Answer briefly."} for i in range(3)]
RESULTS = Path(__file__).parent / "results"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


class TimedProvider:
    """The real adapter, with the time spent in each model call added up."""

    def __init__(self, inner: AnthropicProvider) -> None:
        self.inner = inner
        self.name = inner.name
        self.supports_tools = inner.supports_tools
        self.spent = 0.0
        self.calls: list[float] = []

    async def complete(self, request: ModelRequest) -> ModelResponse:
        started = time.perf_counter()
        try:
            return await self.inner.complete(request)
        finally:
            elapsed = time.perf_counter() - started
            self.spent += elapsed
            self.calls.append(elapsed)

    async def aclose(self) -> None:
        await self.inner.aclose()


async def measure_overhead(database_url: str, fake: FakeProviderServer, runs: int) -> dict:
    settings = Settings(
        database=DatabaseSettings(url=database_url),
        providers=ProviderSettings(anthropic_api_key="k", anthropic_base_url=fake.url),
    )
    registry = ProviderRegistry(settings)
    timed = TimedProvider(AnthropicProvider(settings.providers, settings.models))
    registry.register("anthropic", timed)
    db = Database(database_url, pool_size=2)
    async with db.write() as conn:
        _, key = await create_key(conn, "bench", None)
    await db.dispose()

    app = create_app(settings, providers=registry, migrate=False, run_engine=False)
    async with app.router.lifespan_context(app):
        runner = app.state.services.runner
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers={"Authorization": f"Bearer {key}"}
        ) as http:
            workflow = (
                await http.post(
                    "/v1/workflows", json={"name": "bench", "model": "claude-bench", "crew": CREW}
                )
            ).json()["data"]
            run_ids = [
                (
                    await http.post(f"/v1/workflows/{workflow['id']}/runs", json={"input": f"q{i}"})
                ).json()["data"]["id"]
                for i in range(runs + 20)
            ]
        per_step: list[float] = []
        for index, run_id in enumerate(run_ids):
            timed.spent = 0.0
            started = time.perf_counter()
            result = await runner.advance(run_id)
            wall = time.perf_counter() - started
            assert result is not None and result.status == "completed", result
            if index >= 20:  # warm-up runs are not counted
                per_step.append((wall - timed.spent) / len(CREW) * 1000)
        model_ms = [c * 1000 for c in timed.calls[20 * len(CREW) :]]
    return {
        "runs": runs,
        "steps": runs * len(CREW),
        "overhead_per_step_ms": {
            "p50": round(percentile(per_step, 50), 3),
            "p99": round(percentile(per_step, 99), 3),
            "mean": round(statistics.fmean(per_step), 3),
        },
        "model_call_ms_via_sdk": {
            "p50": round(percentile(model_ms, 50), 3),
            "p99": round(percentile(model_ms, 99), 3),
        },
    }


async def measure_trigger(workdir: Path, fake: FakeProviderServer, count: int, url: str) -> dict:
    env = {"LOOPLLAMA_DATABASE_URL": url} if url else {}
    # The engine runs too (as in production), answering from the zero-latency fake.
    server = LiveServer(workdir, fake, **env)
    server.start()
    try:
        async with server.client() as http:
            workflow = (
                await http.post(
                    "/v1/workflows", json={"name": "t", "model": "claude-bench", "crew": CREW[:1]}
                )
            ).json()["data"]
            path = f"/v1/workflows/{workflow['id']}/runs"
            latencies = []
            for i in range(count + 100):
                started = time.perf_counter()
                response = await http.post(path, json={"input": f"t{i}"})
                elapsed = (time.perf_counter() - started) * 1000
                assert response.status_code == 202, response.text
                if i >= 100:
                    latencies.append(elapsed)
    finally:
        server.stop()
    return {
        "requests": count,
        "trigger_latency_ms": {
            "p50": round(percentile(latencies, 50), 3),
            "p99": round(percentile(latencies, 99), 3),
        },
        "closed_loop_rate_per_s": round(count / (sum(latencies) / 1000), 1),
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--triggers", type=int, default=2000)
    parser.add_argument("--database-url", default="", help="default: a temporary SQLite file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, FakeProviderServer() as fake:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        backend = "sqlite" if url.startswith("sqlite") else "postgresql"
        figures = {"backend": backend, **await measure_overhead(url, fake, args.runs)}
        trigger_url = args.database_url or f"sqlite:///{Path(tmp) / 'trigger.db'}"
        figures.update(await measure_trigger(Path(tmp), fake, args.triggers, trigger_url))
    print(json.dumps(figures, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"overhead-{backend}.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
