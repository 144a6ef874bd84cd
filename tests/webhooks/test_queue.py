"""PostgreSQL: webhook attempts go through the procrastinate queue; with two workers taking
jobs (and several jobs for every attempt), each attempt is still sent exactly once."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest

from loopllama.providers.fake import FakeProvider, reply
from loopllama.providers.registry import ProviderRegistry
from loopllama.store.db import Database
from loopllama.webhooks.queue import WebhookWorker, defer_attempts
from tests.helpers import app_client, wait_for_run
from tests.webhooks.support import create_endpoint, wait_deliveries

pytestmark = pytest.mark.postgres

RUNS = 3
EVENTS_PER_RUN = 5


@pytest.fixture
def backend() -> str:
    return "postgres"


async def test_two_workers_send_each_attempt_once(settings, api_key, hook):
    hook.fail_each_first = True  # every delivery needs two attempts
    hook.delay = 0.2  # attempts overlap with the duplicate jobs below
    fake = FakeProvider()
    registry = ProviderRegistry(settings)
    registry.register("fake", fake)
    db = Database(settings.database.url, pool_size=2)
    second = WebhookWorker(db, settings)  # the app's process runs the first
    await second.start()
    try:
        async with app_client(settings, api_key, providers=registry) as client:
            endpoint = await create_endpoint(client, hook)
            body = {"name": "w", "model": "fake/t", "crew": [{"role": "a", "systemPrompt": "b"}]}
            workflow = (await client.post("/v1/workflows", json=body)).json()["data"]
            for _ in range(RUNS):
                fake.enqueue(reply("x", 1, 1))
                run = await client.post(f"/v1/workflows/{workflow['id']}/runs", json={"input": "i"})
                await wait_for_run(client, run.json()["data"]["id"], ("completed",))
            total = RUNS * EVENTS_PER_RUN
            listed = await wait_deliveries(client, endpoint["id"], lambda ds: len(ds) == total)
            # Three more jobs for every delivery, as a sweep or a crash could leave behind.
            async with db.write() as conn:
                for _ in range(3):
                    await defer_attempts(conn, [d["id"] for d in listed])
            done = await wait_deliveries(
                client,
                endpoint["id"],
                lambda ds: all(d["status"] == "succeeded" for d in ds),
                timeout=60,
            )
            await asyncio.sleep(1)  # any duplicate send would arrive by now
    finally:
        await second.stop()
        await db.dispose()

    sends = Counter(r.id for r in hook.verified())
    assert set(sends) == {d["id"] for d in done}
    assert all(count == 2 for count in sends.values()), sends
    assert all(d["attempts"] == 2 for d in done)
