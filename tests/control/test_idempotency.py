"""Idempotency-Key on run triggers (part 7): replays, mismatches, races, retention."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlalchemy import func, select, update

from loopllama.ids import utcnow
from loopllama.store.db import Database
from loopllama.store.idempotency import purge_expired
from loopllama.store.tables import idempotency_keys, runs
from tests.control.support import make_workflow

MISMATCH = (422, {"error": "Idempotency-Key was already used with a different request"})


async def post(client, workflow_id, key, body=None):
    return await client.post(
        f"/v1/workflows/{workflow_id}/runs",
        json=body or {"input": "hello"},
        headers={"Idempotency-Key": key},
    )


async def count_runs(settings) -> int:
    db = Database(settings.database.url, pool_size=1)
    try:
        async with db.read() as conn:
            return await conn.scalar(select(func.count()).select_from(runs))
    finally:
        await db.dispose()


async def test_a_replay_answers_the_original_run(client, settings):
    workflow = await make_workflow(client)
    first = await post(client, workflow["id"], "order-42")
    assert first.status_code == 202 and "idempotent-replayed" not in first.headers
    again = await post(client, workflow["id"], "order-42", {"input": "hello"})
    assert again.status_code == 202
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json()["data"]["id"] == first.json()["data"]["id"]
    assert await count_runs(settings) == 1
    # Other keys, and no key, make new runs.
    assert (await post(client, workflow["id"], "order-43")).json()["data"]["id"] != first.json()[
        "data"
    ]["id"]
    assert await count_runs(settings) == 2


async def test_the_same_key_with_another_request_is_a_422(client):
    workflow = await make_workflow(client)
    other = await make_workflow(client, name="other")
    assert (await post(client, workflow["id"], "k1")).status_code == 202
    response = await post(client, workflow["id"], "k1", {"input": "something else"})
    assert (response.status_code, response.json()) == MISMATCH
    response = await post(client, other["id"], "k1")
    assert (response.status_code, response.json()) == MISMATCH


async def test_keys_are_per_account(client, app, other_api_key):
    import httpx

    workflow = await make_workflow(client)
    assert (await post(client, workflow["id"], "shared")).status_code == 202
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {other_api_key}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers=headers
    ) as other:
        mine = await make_workflow(other)
        response = await post(other, mine["id"], "shared")
        assert response.status_code == 202 and "idempotent-replayed" not in response.headers


async def test_invalid_keys_are_400s(client):
    workflow = await make_workflow(client)
    for key in ("", "a" * 256, "has space", "naïve"):
        response = await client.post(
            f"/v1/workflows/{workflow['id']}/runs",
            json={"input": "x"},
            headers={"Idempotency-Key": key.encode("utf-8")},
        )
        assert (response.status_code, response.json()) == (
            400,
            {"error": "Invalid Idempotency-Key header"},
        ), key
    assert (await post(client, workflow["id"], "~" * 255)).status_code == 202


async def test_twenty_concurrent_requests_with_one_key_make_one_run(client, settings):
    workflow = await make_workflow(client)
    responses = await asyncio.gather(*(post(client, workflow["id"], "race") for _ in range(20)))
    assert {r.status_code for r in responses} == {202}
    assert len({r.json()["data"]["id"] for r in responses}) == 1
    replayed = [r for r in responses if r.headers.get("idempotent-replayed") == "true"]
    assert len(replayed) == 19
    assert await count_runs(settings) == 1


async def test_a_failed_request_does_not_use_up_its_key(client):
    workflow = await make_workflow(client)
    await client.patch(f"/v1/workflows/{workflow['id']}", json={"status": "paused"})
    assert (await post(client, workflow["id"], "k")).status_code == 409
    await client.patch(f"/v1/workflows/{workflow['id']}", json={"status": "active"})
    response = await post(client, workflow["id"], "k")
    assert response.status_code == 202 and "idempotent-replayed" not in response.headers


async def test_expired_keys_are_forgotten_and_purged(client, settings):
    workflow = await make_workflow(client)
    first = (await post(client, workflow["id"], "old")).json()["data"]["id"]
    db = Database(settings.database.url, pool_size=1)
    try:
        async with db.write() as conn:
            await conn.execute(
                update(idempotency_keys).values(created_at=utcnow() - timedelta(hours=25))
            )
        # Expired but not yet purged: the key is free again, even for another request.
        second = await post(client, workflow["id"], "old", {"input": "new"})
        assert second.status_code == 202 and second.json()["data"]["id"] != first
        async with db.write() as conn:
            await conn.execute(
                update(idempotency_keys).values(created_at=utcnow() - timedelta(hours=25))
            )
            assert await purge_expired(conn, 24) == 1
            assert await conn.scalar(select(func.count()).select_from(idempotency_keys)) == 0
    finally:
        await db.dispose()


async def test_the_engine_purges_expired_keys_periodically(client, app, settings):
    """At start and then periodically: the embedded engine (SQLite) and the workers' sweep
    (PostgreSQL, every couple of seconds)."""
    workflow = await make_workflow(client)
    assert (await post(client, workflow["id"], "stale")).status_code == 202
    assert (await post(client, workflow["id"], "fresh")).status_code == 202
    db = Database(settings.database.url, pool_size=1)
    try:
        async with db.write() as conn:
            await conn.execute(
                update(idempotency_keys)
                .where(idempotency_keys.c.key == "stale")
                .values(created_at=utcnow() - timedelta(hours=25))
            )
        dispatcher = app.state.services.dispatcher
        await dispatcher.stop()
        await dispatcher.start()  # a fresh engine: its first purge is due at once
        for _ in range(200):
            async with db.read() as conn:
                keys = list((await conn.execute(select(idempotency_keys.c.key))).scalars())
            if keys == ["fresh"]:
                break
            await asyncio.sleep(0.05)
        assert keys == ["fresh"]
    finally:
        await db.dispose()
