"""Trigger latency and rate: `POST /v1/workflows/{id}/runs` over real HTTP, open-loop.

    .venv/bin/python -m bench.trigger [--rates 250,500,1000] [--seconds 10]
                                      [--backends sqlite,postgresql] [--max-connections 64]

Topology: one `loopllama serve` process. On SQLite it runs the engine too (the only embedded
topology), answered by a zero-latency fake Anthropic server in its own process; on PostgreSQL it
is `serve --no-worker` (the API tier alone: runs wait in the queue for workers).

Open loop: request i is due at start + i / rate, whatever happened to the others, and its latency
counts from that due time, so a server that falls behind shows the wait (no coordinated
omission). Requests go out over up to 1,000 aiohttp connections. The maximum rate is closed
loop: `--max-connections` clients send back to back for `--seconds`. Every answer must be 202.

Prints the figures and writes bench/results/trigger.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path

import aiohttp

from bench.support import (
    cli,
    create_workflow,
    environment,
    fake_provider,
    percentile,
    scratch_database,
    start_server,
    stop,
)

RESULTS = Path(__file__).parent / "results"
WARM_UP_S = 2.0


async def open_loop(url: str, key: str, path: str, rate: float, seconds: float) -> dict:
    """Requests due at a fixed rate; latency from each request's due time to its answer."""
    connector = aiohttp.TCPConnector(limit=1000)
    headers = {"Authorization": f"Bearer {key}"}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession(url, connector=connector, headers=headers) as session:

        async def one(i: int, due: float, counted: bool) -> None:
            async with session.post(path, json={"input": f"t{i}"}) as response:
                await response.read()
                statuses[response.status] = statuses.get(response.status, 0) + 1
            if counted:
                latencies.append((time.perf_counter() - due) * 1000)

        total = int(rate * (WARM_UP_S + seconds))
        warm = int(rate * WARM_UP_S)
        start = time.perf_counter() + 0.1
        tasks = []
        for i in range(total):
            due = start + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, due, i >= warm)))
        await asyncio.gather(*tasks)
        sent_in = time.perf_counter() - start
    return {
        "rate_per_s": rate,
        "requests": total - warm,
        "achieved_send_rate_per_s": round(total / sent_in, 1),
        "statuses": statuses,
        "latency_ms": {
            "p50": round(percentile(latencies, 50), 2),
            "p99": round(percentile(latencies, 99), 2),
            "max": round(max(latencies), 2),
        },
    }


async def closed_loop(url: str, key: str, path: str, clients: int, seconds: float) -> dict:
    connector = aiohttp.TCPConnector(limit=clients)
    headers = {"Authorization": f"Bearer {key}"}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession(url, connector=connector, headers=headers) as session:
        stop_at = time.perf_counter() + WARM_UP_S + seconds
        counting_from = time.perf_counter() + WARM_UP_S

        async def client(n: int) -> None:
            i = 0
            while (now := time.perf_counter()) < stop_at:
                i += 1
                async with session.post(path, json={"input": f"c{n}-{i}"}) as response:
                    await response.read()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                if now >= counting_from:
                    latencies.append((time.perf_counter() - now) * 1000)

        await asyncio.gather(*(client(n) for n in range(clients)))
    return {
        "connections": clients,
        "max_rate_per_s": round(len(latencies) / seconds, 1),
        "statuses": statuses,
        "latency_ms": {
            "p50": round(percentile(latencies, 50), 2),
            "p99": round(percentile(latencies, 99), 2),
        },
    }


def measure(backend: str, rates: list[float], seconds: float, clients: int) -> dict:
    with fake_provider(0.0) as provider_url, scratch_database(backend) as url:
        env = environment(url, provider_url)
        key = cli(env, "keys", "create", "--account", "bench").strip().splitlines()[-1]
        extra = ("--no-worker",) if backend == "postgresql" else ()
        server, base = start_server(env, *extra)
        try:
            path = f"/v1/workflows/{create_workflow(base, key, 1)}/runs"
            figures: dict = {
                "backend": backend,
                "topology": "serve --no-worker" if extra else "serve (API and engine)",
                "open_loop": [],
            }
            for rate in rates:
                result = asyncio.run(open_loop(base, key, path, rate, seconds))
                print(json.dumps({"backend": backend, **result}), flush=True)
                figures["open_loop"].append(result)
            result = asyncio.run(closed_loop(base, key, path, clients, seconds))
            print(json.dumps({"backend": backend, **result}), flush=True)
            figures["closed_loop"] = result
        finally:
            stop(server)
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="250,500,1000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--max-connections", type=int, default=64)
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    figures = [
        measure(backend, rates, args.seconds, args.max_connections)
        for backend in args.backends.split(",")
    ]
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "trigger.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
