"""The endpoint API on SQLite and PostgreSQL: shapes, the secret shown only on create and
rotate, validation messages, refused addresses, and other accounts' endpoints as 404."""

from __future__ import annotations

import re

import pytest
from standardwebhooks.webhooks import Webhook

from loopllama.settings import ToolSettings
from tests.helpers import app_client
from tests.webhooks.support import ALL_TYPES

URL = "http://127.0.0.1:9/hook"
FIELDS = {"id", "url", "events", "workflow_id", "description", "status", "created_at"}


async def _create(client, **body):
    return await client.post("/v1/webhooks", json={"url": URL, "events": ["run.completed"], **body})


async def test_create_shows_the_secret_once(client):
    response = await _create(client, description="ops")
    assert response.status_code == 201, response.text
    created = response.json()["data"]
    assert set(created) == FIELDS | {"updated_at", "secret"}
    assert created["status"] == "enabled" and created["workflow_id"] is None
    assert created["events"] == ["run.completed"] and created["description"] == "ops"
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", created["secret"])
    Webhook(created["secret"])  # the package accepts it as a secret

    listed = (await client.get("/v1/webhooks")).json()["data"]
    retrieved = (await client.get(f"/v1/webhooks/{created['id']}")).json()["data"]
    patched = (
        await client.patch(f"/v1/webhooks/{created['id']}", json={"description": "x"})
    ).json()["data"]
    for shown in (listed[0], retrieved, patched):
        assert "secret" not in shown
        assert created["secret"] not in str(shown)
    assert retrieved == {k: v for k, v in created.items() if k != "secret"}
    assert patched["description"] == "x"


async def test_list_is_newest_first_and_delete_removes(client):
    first = (await _create(client)).json()["data"]
    second = (await _create(client)).json()["data"]
    listed = (await client.get("/v1/webhooks")).json()["data"]
    assert [e["id"] for e in listed] == [second["id"], first["id"]]

    assert (await client.delete(f"/v1/webhooks/{first['id']}")).status_code == 204
    assert (await client.get(f"/v1/webhooks/{first['id']}")).status_code == 404
    assert [e["id"] for e in (await client.get("/v1/webhooks")).json()["data"]] == [second["id"]]


async def test_patch_changes_fields_and_status(client):
    workflow = (await client.post("/v1/workflows", json={"name": "w"})).json()["data"]
    endpoint = (await _create(client)).json()["data"]
    body = {
        "url": "http://127.0.0.1:10/other",
        "events": ["run.failed", "run.completed", "run.failed"],
        "workflow_id": workflow["id"],
        "status": "disabled",
    }
    response = await client.patch(f"/v1/webhooks/{endpoint['id']}", json=body)
    assert response.status_code == 200, response.text
    patched = response.json()["data"]
    assert patched["url"] == body["url"] and patched["status"] == "disabled"
    assert patched["events"] == ["run.failed", "run.completed"]  # duplicates dropped
    assert patched["workflow_id"] == workflow["id"]
    assert (await client.get(f"/v1/webhooks/{endpoint['id']}")).json()["data"] == patched


async def test_rotate_secret_answers_a_new_secret(client):
    endpoint = (await _create(client)).json()["data"]
    response = await client.post(f"/v1/webhooks/{endpoint['id']}/rotate_secret")
    assert response.status_code == 200
    rotated = response.json()["data"]
    assert rotated["secret"].startswith("whsec_") and rotated["secret"] != endpoint["secret"]
    assert "secret" not in (await client.get(f"/v1/webhooks/{endpoint['id']}")).json()["data"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"events": ["run.completed"]}, "Required"),
        ({"url": URL}, "Required"),
        ({"url": URL, "events": []}, "Array must contain at least 1 element(s)"),
        ({"url": 5, "events": ["run.completed"]}, "Expected string, received number"),
        (
            {"url": URL, "events": ["run.exploded"]},
            "Invalid enum value. Expected "
            + " | ".join(f"'{t}'" for t in ALL_TYPES)
            + ", received 'run.exploded'",
        ),
        (
            {"url": "ftp://x.example/", "events": ["run.completed"]},
            "Invalid url: url must use http or https",
        ),
        (
            {"url": "not a url", "events": ["run.completed"]},
            "Invalid url: url must not contain whitespace or control characters",
        ),
        (
            {"url": "https://x.example/" + "a" * 2000, "events": ["run.completed"]},
            "String must contain at most 2000 character(s)",
        ),
        (
            {"url": URL, "events": ["run.completed"], "description": "d" * 501},
            "String must contain at most 500 character(s)",
        ),
    ],
)
async def test_bad_bodies_get_the_usual_messages(client, body, message):
    response = await client.post("/v1/webhooks", json=body)
    assert (response.status_code, response.json()) == (400, {"error": message})


async def test_bad_patches_get_the_usual_messages(client):
    endpoint = (await _create(client)).json()["data"]
    path = f"/v1/webhooks/{endpoint['id']}"
    for body, message in [
        (
            {"status": "paused"},
            "Invalid enum value. Expected 'enabled' | 'disabled', received 'paused'",
        ),
        ({"url": None}, "Expected string, received null"),
        ({"events": []}, "Array must contain at least 1 element(s)"),
    ]:
        response = await client.patch(path, json=body)
        assert (response.status_code, response.json()) == (400, {"error": message})
    assert (await client.patch(path, content=b"{")).json() == {"error": "Malformed JSON body"}


async def test_a_workflow_of_another_account_is_not_found(client, other_api_key):
    theirs = (
        await client.post(
            "/v1/workflows",
            json={"name": "t"},
            headers={"Authorization": f"Bearer {other_api_key}"},
        )
    ).json()["data"]
    for workflow_id in (theirs["id"], "missing"):
        response = await _create(client, workflow_id=workflow_id)
        assert (response.status_code, response.json()) == (404, {"error": "Not found"})


async def test_other_accounts_see_nothing(client, other_api_key):
    endpoint = (await _create(client)).json()["data"]
    other = {"Authorization": f"Bearer {other_api_key}"}
    assert (await client.get("/v1/webhooks", headers=other)).json() == {"data": []}
    path = f"/v1/webhooks/{endpoint['id']}"
    for method, suffix in [
        ("GET", ""),
        ("PATCH", ""),
        ("DELETE", ""),
        ("POST", "/rotate_secret"),
        ("GET", "/deliveries"),
    ]:
        kwargs = {"json": {"description": "mine"}} if method == "PATCH" else {}
        response = await client.request(method, path + suffix, headers=other, **kwargs)
        assert (response.status_code, response.json()) == (404, {"error": "Not found"}), method
    assert (await client.get(path)).json()["data"]["description"] is None


async def test_no_key_is_401(anonymous):
    assert (await anonymous.get("/v1/webhooks")).status_code == 401


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8080/hook", "loopback"),
        ("http://localhost/hook", "loopback"),
        ("http://10.1.2.3/hook", "private"),
        ("http://169.254.169.254/latest/meta-data", "cloud metadata"),
        ("http://[::ffff:192.168.0.1]/hook", "private"),
    ],
)
async def test_refused_addresses(settings, api_key, url, reason):
    # The same rules as http_request: without the allow list, these are refused.
    strict = settings.model_copy(update={"tools": ToolSettings()})
    async with app_client(strict, api_key, run_engine=False) as client:
        response = await client.post("/v1/webhooks", json={"url": url, "events": ["run.failed"]})
        assert response.status_code == 400, response.text
        message = response.json()["error"]
        assert message.startswith("Invalid url: refused to connect to ")
        assert f"{reason} address" in message
        assert (await client.get("/v1/webhooks")).json() == {"data": []}
