"""The cost of rate limiting per request, as a ratio to a request without it, in one run.

    .venv/bin/python -m bench.ratelimit [--requests 3000] [--redis redis://127.0.0.1:6379/14]

The app runs in this process (SQLite, no engine) and is called through httpx's ASGI transport,
so the figure is the server's own work per request: `GET /v1/workflows` (the key lookup, an
empty list) with the limiter replaced by a no-op, then counted in memory, then in Redis (the
machine's, database 14, emptied before and after). Rounds alternate the three so that a busy
machine slows them alike; each figure is the median of the rounds' per-request means. The
limiter's own call (`admit`: count, then read the window for the headers) is timed apart.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time

import httpx
import redis

from bench.support import scratch_database
from loopllama.api.app import create_app
from loopllama.api.ratelimit import RateLimiter
from loopllama.settings import DatabaseSettings, LimitSettings, Settings
from loopllama.store.db import Database
from loopllama.store.keys import create_key

ROUNDS = 5


class NoLimiter:
    async def admit(self, key_id, key_rate, *, trigger):
        return [], None

    async def aclose(self) -> None:
        return None


async def per_request(http: httpx.AsyncClient, requests: int) -> float:
    started = time.perf_counter()
    for _ in range(requests):
        answer = await http.get("/v1/workflows")
        assert answer.status_code == 200, answer.text
    return (time.perf_counter() - started) / requests


async def main(requests: int, redis_url: str) -> None:
    with scratch_database("sqlite") as url:
        db = Database(url, pool_size=1)
        async with db.write() as conn:
            _, key = await create_key(conn, "bench", None)
        await db.dispose()
        unlimited = LimitSettings(rate_limit="1000000/second", run_rate_limit="1000000/second")
        settings = Settings(database=DatabaseSettings(url=url), limits=unlimited)
        app = create_app(settings, migrate=False, run_engine=False)
        limiters = {
            "none": NoLimiter(),
            "memory": RateLimiter(unlimited),
            "redis": RateLimiter(unlimited.model_copy(update={"redis_url": redis_url})),
        }
        redis.Redis.from_url(redis_url).flushdb()
        timings: dict[str, list[float]] = {name: [] for name in limiters}
        async with app.router.lifespan_context(app):
            services = app.state.services
            transport = httpx.ASGITransport(app=app)
            headers = {"Authorization": f"Bearer {key}"}
            async with httpx.AsyncClient(
                transport=transport, base_url="http://bench", headers=headers
            ) as http:
                services.limiter = NoLimiter()
                await per_request(http, 200)  # warm up
                for _ in range(ROUNDS):
                    for name, limiter in limiters.items():
                        services.limiter = limiter
                        timings[name].append(await per_request(http, requests // ROUNDS))
            direct = {}
            for name, limiter in limiters.items():  # the limiter alone, without the request
                started = time.perf_counter()
                for _ in range(requests):
                    await limiter.admit("bench-key", None, trigger=False)
                direct[name] = (time.perf_counter() - started) / requests
            if not limiters["redis"].shared:
                print("warning: Redis timed out during the run; some counts went to memory")
            for limiter in limiters.values():
                await limiter.aclose()
        redis.Redis.from_url(redis_url).flushdb()
    base = statistics.median(timings["none"])
    print(f"{requests} requests per configuration (GET /v1/workflows, in process, SQLite)")
    for name in limiters:
        mean = statistics.median(timings[name])
        print(
            f"  {name:<7} {mean * 1e6:8.0f} µs/request   ratio {mean / base:5.2f}   "
            f"(+{(mean - base) * 1e6:.0f} µs; the limiter alone {direct[name] * 1e6:.0f} µs)"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/14")
    arguments = parser.parse_args()
    asyncio.run(main(arguments.requests, arguments.redis))
