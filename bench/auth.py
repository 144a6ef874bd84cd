"""The cost of authenticating a request: the key lookup statement, and a whole read request.

    .venv/bin/python -m bench.auth [--lookups 5000] [--requests 2000] [--backends sqlite,postgresql]

Lookup: the key lookup of every request on its own (`Database.query()`, as `get_account` runs
it), before scopes (account id where hash matches and not revoked) and now (KEY_LOOKUP: the
grant's columns too, and the expiry checked in the statement).
Request: `GET /v1/workflows/{id}` in process (ASGI, no sockets), sequentially: authentication,
the scope check, the workflow lookup and the JSON answer. Run it on another checkout's sources
(`PYTHONPATH=../main/src`) to compare the request figure with the code before scopes.

Wall time (`_us`) and this process's CPU time (`_cpu_us`, steadier on a busy machine) per
operation. Prints the figures and writes them to bench/results/auth.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy import bindparam, select

from bench.support import scratch_database
from loopllama.api.app import create_app
from loopllama.settings import DatabaseSettings, Settings
from loopllama.store.db import Database
from loopllama.store.keys import create_key, hash_key
from loopllama.store.tables import api_keys

RESULTS = Path(__file__).parent / "results"

BEFORE_SCOPES = select(api_keys.c.account_id).where(
    api_keys.c.key_hash == bindparam("b_key_hash"), api_keys.c.revoked_at.is_(None)
)


async def _lookups(url: str, key: str, count: int) -> dict[str, float]:
    try:
        from loopllama.store.statements import KEY_LOOKUP
    except ImportError:  # sources from before scopes
        KEY_LOOKUP = None
    db = Database(url, pool_size=2)
    figures = {}
    try:
        params = {"b_key_hash": hash_key(key), "b_now": datetime.now(UTC)}
        statements = {"before_scopes": BEFORE_SCOPES, "with_scopes": KEY_LOOKUP}
        for name, statement in statements.items():
            if statement is None:
                continue
            for _ in range(200):  # warm the pool and the statement cache
                async with db.query() as conn:
                    await conn.execute(statement, params)
            started, cpu = time.perf_counter(), time.process_time()
            for _ in range(count):
                async with db.query() as conn:
                    (await conn.execute(statement, params)).first()
            figures[f"lookup_{name}_us"] = (time.perf_counter() - started) / count * 1e6
            figures[f"lookup_{name}_cpu_us"] = (time.process_time() - cpu) / count * 1e6
    finally:
        await db.dispose()
    return figures


async def _requests(url: str, key: str, count: int) -> dict[str, float]:
    settings = Settings(database=DatabaseSettings(url=url, pool_size=5))
    app = create_app(settings, migrate=False, run_engine=False)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(
            transport=transport, base_url="http://bench", headers=headers
        ) as http:
            created = await http.post("/v1/workflows", json={"name": "bench"})
            path = f"/v1/workflows/{created.json()['data']['id']}"
            for _ in range(200):
                assert (await http.get(path)).status_code == 200
            started, cpu = time.perf_counter(), time.process_time()
            for _ in range(count):
                await http.get(path)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    return {"read_request_us": elapsed / count * 1e6, "read_request_cpu_us": cpu / count * 1e6}


async def _backend(backend: str, lookups: int, requests: int) -> dict[str, float]:
    with scratch_database(backend) as url:
        db = Database(url, pool_size=1)
        async with db.write() as conn:
            _, key = await create_key(conn, "bench", None)
        await db.dispose()
        figures = await _lookups(url, key, lookups)
        figures.update(await _requests(url, key, requests))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    results = {}
    for backend in args.backends.split(","):
        figures = asyncio.run(_backend(backend, args.lookups, args.requests))
        results[backend] = {name: round(value, 1) for name, value in figures.items()}
        for name, value in results[backend].items():
            print(f"{backend:10s} {name:28s} {value:8.1f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "auth.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
