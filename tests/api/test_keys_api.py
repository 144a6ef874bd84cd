"""The keys API: create (never wider than the caller), list, revoke at once; expiry and the
coarse `last_used_at`."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from loopllama.permissions import Grant
from loopllama.store.db import Database
from loopllama.store.tables import api_keys
from tests.api.keys_support import make_key, set_key_columns
from tests.helpers import app_client

FORBIDDEN = (403, {"error": "Insufficient permissions"})
NOT_FOUND = (404, {"error": "Not found"})
INVALID_KEY = (401, {"error": "Invalid API key"})
SCOPE_WORDS = "'read' | 'run' | 'admin'"
KEY_FIELDS = {
    "id",
    "label",
    "scope",
    "workflow_ids",
    "hint",
    "created_at",
    "expires_at",
    "last_used_at",
    "revoked_at",
}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def future(**delta: float) -> str:
    return (datetime.now(UTC) + timedelta(**delta)).isoformat().replace("+00:00", "Z")


async def new_workflow(client, name: str = "w") -> str:
    response = await client.post("/v1/workflows", json={"name": name, "model": "fake/t"})
    return response.json()["data"]["id"]


async def test_create_shows_the_key_once_and_it_works_with_its_grant(client):
    workflow_id = await new_workflow(client)
    expires_at = future(days=30)
    body = {
        "label": "dash",
        "scope": "read",
        "workflow_ids": [workflow_id],
        "expires_at": expires_at,
    }
    response = await client.post("/v1/keys", json=body)
    assert response.status_code == 201
    created = response.json()["data"]
    assert set(created) == KEY_FIELDS | {"key"}
    assert created["key"].startswith("ll_live_") and created["hint"] == created["key"][:12] + "…"
    assert (created["label"], created["scope"], created["workflow_ids"]) == (
        "dash",
        "read",
        [workflow_id],
    )
    assert created["expires_at"][:19] == expires_at[:19]
    assert created["last_used_at"] is None and created["revoked_at"] is None

    listed = (await client.get("/v1/keys")).json()["data"]
    assert listed[0]["id"] == created["id"]  # newest first
    assert all(set(k) == KEY_FIELDS for k in listed)  # never the key itself

    new = bearer(created["key"])
    assert (await client.get(f"/v1/workflows/{workflow_id}", headers=new)).status_code == 200
    response = await client.post(
        f"/v1/workflows/{workflow_id}/runs", json={"input": "x"}, headers=new
    )
    assert (response.status_code, response.json()) == FORBIDDEN


async def test_defaults_are_an_admin_key_for_every_workflow_that_never_expires(client):
    created = (await client.post("/v1/keys", json={})).json()["data"]
    assert (created["scope"], created["workflow_ids"], created["expires_at"]) == (
        "admin",
        None,
        None,
    )
    assert created["label"] is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"scope": "owner"},
            "Invalid enum value. Expected 'read' | 'run' | 'admin', received 'owner'",
        ),
        ({"scope": 1}, f"Expected {SCOPE_WORDS}, received number"),
        ({"label": 5}, "Expected string, received number"),
        ({"label": ""}, "String must contain at least 1 character(s)"),
        ({"workflow_ids": []}, "Array must contain at least 1 element(s)"),
        ({"workflow_ids": "abc"}, "Expected array, received string"),
        ({"workflow_ids": ["nope"]}, "Unknown workflow: nope"),
        ({"expires_at": "tomorrow"}, "Invalid datetime"),
        ({"expires_at": "2030-01-01T00:00:00"}, "Invalid datetime"),
        ({"expires_at": "2001-01-01T00:00:00Z"}, "expires_at must be in the future"),
        ([], "Expected object, received array"),
    ],
)
async def test_bad_bodies_are_400_with_one_message(client, body, message):
    response = await client.post("/v1/keys", json=body)
    assert (response.status_code, response.json()) == (400, {"error": message})


async def test_malformed_json_is_400(client):
    response = await client.post("/v1/keys", content=b"{bad")
    assert (response.status_code, response.json()) == (400, {"error": "Malformed JSON body"})


async def test_a_key_never_creates_a_wider_key(settings, client):
    first, second = await new_workflow(client, "a"), await new_workflow(client, "b")
    soon = datetime.now(UTC) + timedelta(days=1)
    _, key = await make_key(settings, workflow_ids=[first], expires_at=soon)
    limited = bearer(key)
    for body in (
        {"workflow_ids": [second]},
        {"workflow_ids": [first, second]},
        {"expires_at": future(days=2)},
    ):
        response = await client.post("/v1/keys", json=body, headers=limited)
        assert (response.status_code, response.json()) == FORBIDDEN, body
    # Left out, the limit and the expiry are the creator's own.
    created = (await client.post("/v1/keys", json={"scope": "run"}, headers=limited)).json()["data"]
    assert created["workflow_ids"] == [first]
    assert created["expires_at"][:16] == soon.isoformat()[:16]
    narrower = {"workflow_ids": [first], "expires_at": future(hours=1), "scope": "read"}
    assert (await client.post("/v1/keys", json=narrower, headers=limited)).status_code == 201


def test_the_narrower_rule():
    admin, run, read = Grant("admin"), Grant("run"), Grant("read")
    assert read.within(run) and run.within(admin) and admin.within(admin)
    assert not admin.within(run) and not run.within(read)
    limited = Grant("admin", frozenset({"a"}))
    assert Grant("read", frozenset({"a"})).within(limited)
    assert not Grant("read").within(limited)
    assert not Grant("read", frozenset({"a", "b"})).within(limited)
    later = datetime(2031, 1, 1, tzinfo=UTC)
    expiring = Grant("admin", None, datetime(2030, 1, 1, tzinfo=UTC))
    assert not Grant("read").within(expiring)
    assert not Grant("read", None, later).within(expiring)
    assert Grant("read", None, datetime(2029, 1, 1, tzinfo=UTC)).within(expiring)


async def test_only_admin_keys_reach_the_keys_api(settings, client):
    for scope in ("read", "run"):
        _, key = await make_key(settings, scope=scope)
        for method, path in (("GET", "/v1/keys"), ("POST", "/v1/keys"), ("DELETE", "/v1/keys/x")):
            response = await client.request(method, path, json={}, headers=bearer(key))
            assert (response.status_code, response.json()) == FORBIDDEN, (scope, method)


async def test_revocation_is_immediate_and_a_key_cannot_revoke_itself(settings, client, api_key):
    created = (await client.post("/v1/keys", json={"label": "temp"})).json()["data"]
    other = bearer(created["key"])
    assert (await client.get("/v1/workflows", headers=other)).status_code == 200
    response = await client.delete(f"/v1/keys/{created['id']}")
    assert response.status_code == 204 and response.content == b""
    response = await client.get("/v1/workflows", headers=other)
    assert (response.status_code, response.json()) == INVALID_KEY
    # Revoking again changes nothing; the list shows when it was revoked.
    assert (await client.delete(f"/v1/keys/{created['id']}")).status_code == 204
    listed = {k["id"]: k for k in (await client.get("/v1/keys")).json()["data"]}
    assert listed[created["id"]]["revoked_at"] is not None
    own_id = next(k["id"] for k in listed.values() if k["id"] != created["id"])
    response = await client.delete(f"/v1/keys/{own_id}")
    assert (response.status_code, response.json()) == (409, {"error": "A key cannot revoke itself"})
    assert (await client.get("/v1/workflows")).status_code == 200


async def test_keys_of_other_accounts_and_wider_keys_do_not_exist(settings, client):
    stranger_id, _ = await make_key(settings, account="globex")
    assert (await client.delete(f"/v1/keys/{stranger_id}")).json() == NOT_FOUND[1]
    assert stranger_id not in {k["id"] for k in (await client.get("/v1/keys")).json()["data"]}
    assert (await client.delete("/v1/keys/nope")).status_code == 404
    # A limited admin key manages only keys within its own workflows.
    workflow_id = await new_workflow(client)
    _, limited_key = await make_key(settings, workflow_ids=[workflow_id])
    unlimited_id, _ = await make_key(settings)
    within_id, _ = await make_key(settings, scope="read", workflow_ids=[workflow_id])
    limited = bearer(limited_key)
    visible = {k["id"] for k in (await client.get("/v1/keys", headers=limited)).json()["data"]}
    assert within_id in visible and unlimited_id not in visible
    response = await client.delete(f"/v1/keys/{unlimited_id}", headers=limited)
    assert (response.status_code, response.json()) == NOT_FOUND
    assert (await client.delete(f"/v1/keys/{within_id}", headers=limited)).status_code == 204


async def test_an_expired_key_fails_at_once_in_every_process(settings, client):
    key_id, key = await make_key(
        settings, scope="read", expires_at=datetime.now(UTC) + timedelta(days=1)
    )
    async with app_client(settings, key, run_engine=False) as second_process:
        assert (await client.get("/v1/workflows", headers=bearer(key))).status_code == 200
        assert (await second_process.get("/v1/workflows")).status_code == 200
        await set_key_columns(settings, key_id, expires_at=datetime.now(UTC) - timedelta(seconds=1))
        for http in (client, second_process):
            response = await http.get("/v1/workflows", headers=bearer(key))
            assert (response.status_code, response.json()) == INVALID_KEY


async def _last_used(settings, key_id: str) -> datetime | None:
    db = Database(settings.database.url, pool_size=1)
    try:
        async with db.read() as conn:
            value = await conn.scalar(
                select(api_keys.c.last_used_at).where(api_keys.c.id == key_id)
            )
    finally:
        await db.dispose()
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


async def test_last_used_at_is_written_at_most_once_a_minute(settings):
    key_id, key = await make_key(settings, scope="read")
    async with app_client(settings, key, run_engine=False) as http:
        assert await _last_used(settings, key_id) is None
        await http.get("/v1/workflows")
        deadline = time.monotonic() + 10
        while (first := await _last_used(settings, key_id)) is None:
            assert time.monotonic() < deadline, "last_used_at was never written"
            await asyncio.sleep(0.01)
        for _ in range(20):
            assert (await http.get("/v1/workflows")).status_code == 200
    # The app's lifespan waited for its writes: nothing more was recorded within the minute.
    assert await _last_used(settings, key_id) == first

    # Another process that reads a recent `last_used_at` writes nothing either...
    recent = datetime.now(UTC) - timedelta(seconds=10)
    await set_key_columns(settings, key_id, last_used_at=recent)
    async with app_client(settings, key, run_engine=False) as other:
        assert (await other.get("/v1/workflows")).status_code == 200
    assert await _last_used(settings, key_id) == recent
    # ...and records a use once the last one is a minute old.
    stale = datetime.now(UTC) - timedelta(minutes=2)
    await set_key_columns(settings, key_id, last_used_at=stale)
    async with app_client(settings, key, run_engine=False) as other:
        assert (await other.get("/v1/workflows")).status_code == 200
    assert await _last_used(settings, key_id) > stale


async def test_last_used_at_shows_in_the_list(client, api_key):
    await client.get("/v1/workflows")
    deadline = time.monotonic() + 10
    while True:
        keys = (await client.get("/v1/keys")).json()["data"]
        if keys[0]["last_used_at"] is not None:
            break
        assert time.monotonic() < deadline
        await asyncio.sleep(0.01)


async def test_ids_no_row_can_have_are_404_not_500(client):
    for method, path in (
        ("DELETE", "/v1/keys/%00"),
        ("GET", "/v1/runs/%00"),
        ("GET", "/v1/workflows/%00"),
    ):
        response = await client.request(method, path)
        assert (response.status_code, response.json()) == NOT_FOUND, path
