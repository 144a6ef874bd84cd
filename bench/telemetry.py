"""What metrics and traces cost the engine: overhead per step and steps/s, on against off.

    .venv/bin/python -m bench.telemetry [--runs 200] [--backend sqlite|postgresql]

One process, one database, one set of 3-agent runs triggered up front through the API (with
traces on, so each run carries its trigger's trace context). The engine then advances them one
at a time, rotating run by run through telemetry **off** (nothing configured), **metrics** only
(Prometheus metrics on a port) and **on** (metrics, and OpenTelemetry traces exported over
OTLP/HTTP to a receiver in its own process), so drift of the machine affects all alike. The
model is the real Anthropic adapter against the zero-latency fake server (its own process);
overhead per step = (advance wall time - model time) / steps, as in bench.overhead. Steps/s
counts the model time too.

Prints the figures and writes them to bench/results/telemetry-<backend>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time

import httpx
from tests.helpers import free_port

from bench.overhead import CREW, RESULTS, TimedProvider, percentile
from bench.support import fake_provider, scratch_database, wait_for_port
from loopllama import telemetry
from loopllama.api.app import create_app
from loopllama.providers.anthropic import AnthropicProvider
from loopllama.providers.registry import ProviderRegistry
from loopllama.settings import DatabaseSettings, ProviderSettings, Settings, TelemetrySettings
from loopllama.store.db import Database
from loopllama.store.keys import create_key

BLOCK = 1  # runs per block; blocks rotate through MODES (run by run: load drift hits all alike)
MODES = ("off", "metrics", "on")
WARMUP = 20


def _receiver() -> tuple[subprocess.Popen, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.otlp_receiver", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    wait_for_port(port)
    return process, f"http://127.0.0.1:{port}"


async def measure(database_url: str, model_url: str, runs: int) -> dict:
    settings = Settings(
        database=DatabaseSettings(url=database_url),
        providers=ProviderSettings(anthropic_api_key="k", anthropic_base_url=model_url),
        telemetry=TelemetrySettings(metrics_port=free_port()),
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
        headers = {"Authorization": f"Bearer {key}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", headers=headers
        ) as h:
            body = {"name": "bench", "model": "claude-bench", "crew": CREW}
            workflow = (await h.post("/v1/workflows", json=body)).json()["data"]
            path = f"/v1/workflows/{workflow['id']}/runs"
            run_ids = [
                (await h.post(path, json={"input": f"q{i}"})).json()["data"]["id"]
                for i in range(len(MODES) * runs + WARMUP)
            ]
        on = (telemetry._metrics, telemetry._tracer)  # configured by the lifespan
        assert all(on), "metrics and traces should both be on"

        overhead: dict[str, list[float]] = {mode: [] for mode in MODES}
        wall = dict.fromkeys(MODES, 0.0)
        state = {"off": (None, None), "metrics": (on[0], None), "on": on}
        for index, run_id in enumerate(run_ids):
            mode = MODES[(index // BLOCK) % len(MODES)]
            telemetry._metrics, telemetry._tracer = state[mode]
            timed.spent = 0.0
            started = time.perf_counter()
            result = await runner.advance(run_id)
            elapsed = time.perf_counter() - started
            assert result is not None and result.status == "completed", result
            if index >= WARMUP:
                overhead[mode].append((elapsed - timed.spent) / len(CREW) * 1000)
                wall[mode] += elapsed
        telemetry._metrics, telemetry._tracer = on

    figures: dict = {"runs_per_mode": runs, "steps_per_mode": runs * len(CREW)}
    for mode in MODES:
        values = overhead[mode]
        figures[mode] = {
            "overhead_per_step_ms": {
                "p50": round(percentile(values, 50), 3),
                "p99": round(percentile(values, 99), 3),
                "mean": round(statistics.fmean(values), 3),
            },
            "steps_per_s": round(len(values) * len(CREW) / wall[mode], 1),
        }
    off = figures["off"]
    for mode in ("metrics", "on"):
        figures[f"ratio_{mode}_to_off"] = {
            "overhead_per_step_p50": round(
                figures[mode]["overhead_per_step_ms"]["p50"] / off["overhead_per_step_ms"]["p50"],
                3,
            ),
            "overhead_per_step_mean": round(
                figures[mode]["overhead_per_step_ms"]["mean"] / off["overhead_per_step_ms"]["mean"],
                3,
            ),
            "steps_per_s": round(figures[mode]["steps_per_s"] / off["steps_per_s"], 3),
        }
    return figures


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="runs per mode")
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    args = parser.parse_args()
    receiver, receiver_url = _receiver()
    os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"] = receiver_url
    try:
        # A scratch database (a temporary SQLite file, or a PostgreSQL database created on
        # LOOPLLAMA_TEST_PG's server and dropped afterwards), migrated.
        with scratch_database(args.backend) as url, fake_provider() as model_url:
            figures = {"backend": args.backend, **await measure(url, model_url, args.runs)}
    finally:
        receiver.terminate()
        exported, _ = receiver.communicate(timeout=30)
    figures["spans_exported"] = json.loads(exported)["spans"]
    print(json.dumps(figures, indent=2))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"telemetry-{args.backend}.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
