"""Fairness: account B's start latency (trigger -> run started) while account A has 10,000
runs queued.

    .venv/bin/python -m bench.fairness [--backlog 10000] [--b-runs 30] [--slots 50]

One process, SQLite, the engine in process with `--slots` runs at once; a scripted model that
answers in 50 ms (so A's backlog takes backlog x 50 ms / slots to drain: 10 s by default). A's
runs are recorded straight into the database and handed to the dispatcher; then B triggers
one run every 100 ms through the API. Figures: B's trigger -> started, p50 / p99 / max, and
how many of A's runs were still waiting when B's last run started.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import datetime

import httpx
from sqlalchemy import text

from bench.support import percentile, scratch_database
from loopllama.api.app import create_app
from loopllama.engine import transitions as t
from loopllama.providers.fake import FakeProvider
from loopllama.providers.registry import ProviderRegistry
from loopllama.settings import DatabaseSettings, EngineSettings, LimitSettings, Settings
from loopllama.store.db import Database
from loopllama.store.keys import create_key
from loopllama.store.workflows import get_workflow

CREW = [{"role": "solo", "systemPrompt": "S."}]


def _aware(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def main(backlog: int, b_runs: int, slots: int) -> None:
    with scratch_database("sqlite") as url:
        db = Database(url, pool_size=1)
        async with db.write() as conn:
            _, key_a = await create_key(conn, "alice", None)
            _, key_b = await create_key(conn, "bob", None)
        await db.dispose()
        settings = Settings(
            database=DatabaseSettings(url=url),
            engine=EngineSettings(max_concurrent_runs=slots),
            limits=LimitSettings(rate_limit="1000000/second", run_rate_limit="1000000/second"),
        )
        registry = ProviderRegistry(settings)
        registry.register("fake", FakeProvider(delay=0.05))
        app = create_app(settings, providers=registry, migrate=False)
        async with app.router.lifespan_context(app):
            services = app.state.services
            transport = httpx.ASGITransport(app=app)

            def client(key: str) -> httpx.AsyncClient:
                headers = {"Authorization": f"Bearer {key}"}
                return httpx.AsyncClient(transport=transport, base_url="http://b", headers=headers)

            async with client(key_a) as a, client(key_b) as b:
                body = {"name": "f", "model": "fake/t", "crew": CREW}
                a_flow = (await a.post("/v1/workflows", json=body)).json()["data"]
                b_flow = (await b.post("/v1/workflows", json=body)).json()["data"]
                async with services.db.write() as conn:
                    owner = await conn.scalar(
                        text("SELECT account_id FROM workflows WHERE id = :id"),
                        {"id": a_flow["id"]},
                    )
                    workflow = await get_workflow(conn, owner, a_flow["id"])
                    ids = [
                        (await t.create_run(conn, owner, workflow, f"alice {i}"))["id"]
                        for i in range(backlog)
                    ]
                for run_id in ids:
                    services.dispatcher.submit(run_id)
                await asyncio.sleep(0.5)  # the backlog is queued and running
                b_ids = []
                for _ in range(b_runs):
                    answer = await b.post(
                        f"/v1/workflows/{b_flow['id']}/runs", json={"input": "bob"}
                    )
                    b_ids.append(answer.json()["data"]["id"])
                    await asyncio.sleep(0.1)
                latencies = []
                for run_id in b_ids:
                    while True:
                        run = (await b.get(f"/v1/runs/{run_id}")).json()["data"]
                        if run["started_at"]:
                            break
                        await asyncio.sleep(0.05)
                    latencies.append(
                        (_aware(run["started_at"]) - _aware(run["created_at"])).total_seconds()
                    )
                waiting = len((await a.get("/v1/runs?status=queued&limit=100")).json()["data"])
            await services.dispatcher.stop()
    ms = [value * 1000 for value in latencies]
    print(f"A: {backlog} runs queued at once; B: {b_runs} runs, one every 100 ms; {slots} slots")
    print(
        f"B trigger -> started: p50 {percentile(ms, 50):.0f} ms, p99 {percentile(ms, 99):.0f} ms, "
        f"max {max(ms):.0f} ms"
    )
    print(
        f"A runs still queued when B's last run started: {waiting}{'+' if waiting == 100 else ''}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backlog", type=int, default=10_000)
    parser.add_argument("--b-runs", type=int, default=30)
    parser.add_argument("--slots", type=int, default=50)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.backlog, arguments.b_runs, arguments.slots))
