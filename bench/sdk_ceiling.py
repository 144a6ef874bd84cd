"""The ceiling the provider SDK puts on one process: model calls per second with nothing else.

    .venv/bin/python -m bench.sdk_ceiling [--calls 4000] [--concurrency 100]

Against the zero-latency fake Anthropic server in its own process, one process makes `--calls`
Messages API calls, `--concurrency` at a time, with no database and no engine:

- `sdk`: `AsyncAnthropic.messages.create` on the SDK's aiohttp client, as the engine calls it;
- `aiohttp`: the same request as plain aiohttp with orjson, for scale (what the HTTP exchange
  itself costs).

A process that runs one model call per step cannot go past the `sdk` rate, whatever the engine
does. Prints CPU per call and calls/s, and writes bench/results/sdk_ceiling.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import anthropic
import orjson

from bench.support import fake_provider

RESULTS = Path(__file__).parent / "results"
MESSAGE = {
    "model": "claude-bench",
    "max_tokens": 1024,
    "system": "Answer briefly.",
    "messages": [{"role": "user", "content": [{"type": "text", "text": "Original request: hi"}]}],
}


async def measure(
    name: str, call: Callable[[], Awaitable[object]], calls: int, concurrency: int
) -> dict:
    gate = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with gate:
            await call()

    await asyncio.gather(*(one() for _ in range(min(calls, 200))))  # warm the pool up
    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(one() for _ in range(calls)))
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "client": name,
        "calls": calls,
        "cpu_ms_per_call": round(cpu * 1000 / calls, 3),
        "calls_per_s": round(calls / wall, 1),
        "cpu_share": round(cpu / wall, 2),
    }


async def run(url: str, calls: int, concurrency: int) -> list[dict]:
    client = anthropic.AsyncAnthropic(
        api_key="k", base_url=url, max_retries=0, http_client=anthropic.DefaultAioHttpClient()
    )
    body = orjson.dumps(MESSAGE)
    headers = {
        "content-type": "application/json",
        "x-api-key": "k",
        "anthropic-version": "2023-06-01",
    }
    async with client, aiohttp.ClientSession() as session:

        async def plain() -> object:
            async with session.post(f"{url}/v1/messages", data=body, headers=headers) as r:
                return orjson.loads(await r.read())

        return [
            await measure("sdk", lambda: client.messages.create(**MESSAGE), calls, concurrency),
            await measure("aiohttp", plain, calls, concurrency),
        ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=100)
    args = parser.parse_args()
    with fake_provider(0.0) as url:
        figures = asyncio.run(run(url, args.calls, args.concurrency))
    for figure in figures:
        print(json.dumps(figure))
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sdk_ceiling.json").write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
