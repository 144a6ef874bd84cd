"""Webhooks: what the outbox costs the engine, and how fast a committed event reaches a receiver.

    .venv/bin/python -m bench.webhooks [--backend sqlite|postgres] [--runs 60] [--endpoints 100]

Three phases, each on a fresh database, in one invocation (so the ratios compare like with like):

1. none       no endpoint: the engine's steps/s (3-agent runs, a zero-latency scripted model,
              engine in process, runs triggered through the API).
2. outbox     `--endpoints` endpoints subscribed to every event type, sender off: the engine
              writes 100 delivery rows per event (9 events a run) and nothing else changes.
3. delivered  the same endpoints with the sender on, POSTing to a receiver in another process:
              the engine's steps/s while deliveries go out, and event committed -> received
              latency (the event's `created_at`, stamped in the committing transaction, to its
              arrival at the receiver), p50 / p99, once no delivery is pending (an attempt that
              times out is retried on the real schedule: 5 s, 5 min..., so keep runs modest).

Prints the figures and writes bench/results/webhooks-<backend>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from tests.helpers import free_port

from bench.support import scratch_database, wait_for_port
from loopllama.api import app as app_module
from loopllama.api.app import create_app
from loopllama.providers.fake import FakeProvider
from loopllama.providers.registry import ProviderRegistry
from loopllama.settings import DatabaseSettings, Settings, ToolSettings, WebhookSettings
from loopllama.store.db import Database
from loopllama.store.keys import create_key

CREW = [{"role": f"agent{i}", "systemPrompt": "Answer briefly."} for i in range(3)]
ALL_TYPES = [
    "run.queued", "run.started", "step.started", "tool_call.updated", "step.completed",
    "step.failed", "run.waiting_input", "run.resumed", "run.completed", "run.failed",
    "run.cancelled",
]  # fmt: skip
RESULTS = Path(__file__).parent / "results"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


# -- the receiver, in its own process ------------------------------------------------------------


def receive(port: int) -> None:
    """A receiver that answers 204 at once and keeps each delivery's latency (ms)."""
    import uvicorn

    latencies: list[float] = []

    async def app(scope: dict, receive_: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive_()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["method"] == "POST":
            stamp = datetime.fromisoformat(json.loads(body)["timestamp"].replace("Z", "+00:00"))
            latencies.append((time.time() - stamp.timestamp()) * 1000)
            answer = b""
        else:
            answer = json.dumps(latencies).encode()
        await send({"type": "http.response.start", "status": 204 if not answer else 200})
        await send({"type": "http.response.body", "body": answer})

    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")


# -- one phase -------------------------------------------------------------------------------


async def phase(
    backend: str, runs: int, endpoints: int, receiver: str | None, sender: bool
) -> dict[str, Any]:
    with scratch_database(backend) as url:
        settings = Settings(
            database=DatabaseSettings(url=url),
            tools=ToolSettings(http_tool_allow="127.0.0.1"),
            webhooks=WebhookSettings(concurrency=32),
        )
        db = Database(url, pool_size=1)
        async with db.write() as conn:
            _, key = await create_key(conn, "bench", None)
        await db.dispose()
        registry = ProviderRegistry(settings)
        registry.register("fake", FakeProvider())
        original = app_module._webhook_sender
        if not sender:
            app_module._webhook_sender = lambda *_: None  # type: ignore[assignment]
        app = create_app(settings, providers=registry, migrate=False)
        try:
            async with app.router.lifespan_context(app):
                return await _drive(app, key, url, runs, endpoints, receiver, sender)
        finally:
            app_module._webhook_sender = original


async def _drive(app, key, url, runs, endpoints, receiver, sender) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(transport=transport, base_url="http://b", headers=headers) as api:
        for _ in range(endpoints):
            body = {"url": f"{receiver}/hook", "events": ALL_TYPES}
            assert (await api.post("/v1/webhooks", json=body)).status_code == 201
        body = {"name": "bench", "model": "fake/x", "crew": CREW}
        workflow = (await api.post("/v1/workflows", json=body)).json()["data"]["id"]
        db = Database(url, pool_size=1)
        started = time.perf_counter()
        for i in range(runs):
            response = await api.post(f"/v1/workflows/{workflow}/runs", json={"input": f"r{i}"})
            assert response.status_code == 202, response.text
        while await _count(db, "SELECT count(*) FROM runs WHERE status = 'completed'") < runs:
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        rows = await _count(db, "SELECT count(*) FROM webhook_deliveries")
        result: dict[str, Any] = {
            "steps_per_s": round(runs * len(CREW) / elapsed, 1),
            "deliveries": rows,
        }
        if sender and endpoints:
            pending = "SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'"
            while await _count(db, pending) > 0:
                await asyncio.sleep(0.05)
            result["all_delivered_after_s"] = round(time.perf_counter() - started, 2)
            failed = "SELECT count(*) FROM webhook_deliveries WHERE status = 'failed'"
            result["failed"] = await _count(db, failed)
        await db.dispose()
    return result


async def _count(db: Database, query: str) -> int:
    async with db.read() as conn:
        return int(await conn.scalar(text(query)))


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    port = free_port()
    command = [sys.executable, "-m", "bench.webhooks", "--receive", str(port)]
    receiver = subprocess.Popen(command)  # noqa: ASYNC220 - once, before measuring
    try:
        wait_for_port(port)
        url = f"http://127.0.0.1:{port}"
        none = await phase(args.backend, args.runs, 0, url, sender=True)
        outbox = await phase(args.backend, args.runs, args.endpoints, url, sender=False)
        delivered = await phase(args.backend, args.latency_runs, args.endpoints, url, sender=True)
        async with httpx.AsyncClient(timeout=30) as http:
            latencies = (await http.get(f"{url}/stats")).json()
    finally:
        receiver.terminate()
        receiver.wait(timeout=10)
    return {
        "backend": args.backend,
        "endpoints": args.endpoints,
        "runs": args.runs,
        "steps_per_s_none": none["steps_per_s"],
        "steps_per_s_outbox": outbox["steps_per_s"],
        "outbox_ratio": round(outbox["steps_per_s"] / none["steps_per_s"], 3),
        "outbox_rows": outbox["deliveries"],
        "latency_runs": args.latency_runs,
        "steps_per_s_delivering": delivered["steps_per_s"],
        "delivering_ratio": round(delivered["steps_per_s"] / none["steps_per_s"], 3),
        "delivered": len(latencies),
        "all_delivered_after_s": delivered.get("all_delivered_after_s"),
        "failed": delivered.get("failed"),
        "latency_ms_p50": round(statistics.median(latencies), 1),
        "latency_ms_p99": round(percentile(latencies, 99), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--latency-runs", type=int, default=5)
    parser.add_argument("--endpoints", type=int, default=100)
    parser.add_argument("--receive", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.receive:
        receive(args.receive)
        return
    result = asyncio.run(main_async(args))
    for key, value in result.items():
        print(f"{key:>24}: {value}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"webhooks-{args.backend}.json").write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
