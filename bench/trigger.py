"""Trigger latency and rate: `POST /v1/workflows/{id}/runs` over real HTTP, open-loop.

    .venv/bin/python -m bench.trigger [--rates 250,500,1000] [--seconds 10]
                                      [--backends sqlite,postgresql] [--max-connections 64]
                                      [--api-processes 1,2]

Topology: on SQLite one `loopllama serve` process, which runs the engine too (the only embedded
topology), answered by a zero-latency fake Anthropic server in its own process. On PostgreSQL
the API tier alone: 1, then 2 `serve --no-worker` processes (`--api-processes`; runs wait in
the queue for workers), the load spread over them in turn as a load balancer would.

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


async def open_loop(urls: list[str], key: str, path: str, rate: float, seconds: float) -> dict:
    """Requests due at a fixed rate; latency from each request's due time to its answer."""
    connector = aiohttp.TCPConnector(limit=1000)
    headers = {"Authorization": f"Bearer {key}"}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

        async def one(i: int, due: float, counted: bool) -> None:
            target = urls[i % len(urls)] + path
            async with session.post(target, json={"input": f"t{i}"}) as response:
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


async def closed_loop(urls: list[str], key: str, path: str, clients: int, seconds: float) -> dict:
    connector = aiohttp.TCPConnector(limit=clients)
    headers = {"Authorization": f"Bearer {key}"}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    async with aiohttp.ClientSession(connector=connector, headers=headers) as session:
        stop_at = time.perf_counter() + WARM_UP_S + seconds
        counting_from = time.perf_counter() + WARM_UP_S

        async def client(n: int) -> None:
            target = urls[n % len(urls)] + path
            i = 0
            while (now := time.perf_counter()) < stop_at:
                i += 1
                async with session.post(target, json={"input": f"c{n}-{i}"}) as response:
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


def measure(
    backend: str, rates: list[float], seconds: float, clients: int, api_processes: int
) -> dict:
    with fake_provider(0.0) as provider_url, scratch_database(backend) as url:
        env = environment(url, provider_url)
        key = cli(env, "keys", "create", "--account", "bench").strip().splitlines()[-1]
        extra = ("--no-worker",) if backend == "postgresql" else ()
        servers = [start_server(env, *extra) for _ in range(api_processes)]
        bases = [base for _, base in servers]
        try:
            path = f"/v1/workflows/{create_workflow(bases[0], key, 1)}/runs"
            topology = "serve --no-worker" if extra else "serve (API and engine)"
            figures: dict = {
                "backend": backend,
                "topology": f"{api_processes} x {topology}",
                "api_processes": api_processes,
                "open_loop": [],
            }
            label = {"backend": backend, "api_processes": api_processes}
            for rate in rates:
                result = asyncio.run(open_loop(bases, key, path, rate, seconds))
                print(json.dumps({**label, **result}), flush=True)
                figures["open_loop"].append(result)
            result = asyncio.run(closed_loop(bases, key, path, clients, seconds))
            print(json.dumps({**label, **result}), flush=True)
            figures["closed_loop"] = result
        finally:
            stop(*(process for process, _ in servers))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="250,500,1000")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--max-connections", type=int, default=64)
    parser.add_argument(
        "--api-processes", default="1,2", help="API process counts to try on PostgreSQL"
    )
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",")]
    figures = []
    for backend in args.backends.split(","):
        # SQLite is one process by design: its engine is in the serving process.
        counts = [1] if backend == "sqlite" else [int(n) for n in args.api_processes.split(",")]
        for count in counts:
            figures.append(measure(backend, rates, args.seconds, args.max_connections, count))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "trigger.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
