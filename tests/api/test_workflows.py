"""Workflows through HTTP: every field, limit, message and status of the reference."""

from __future__ import annotations

import re

import pytest
from pydantic import SecretStr

from loopllama.engine.prompts import DEFAULT_CREW
from loopllama.settings import ProviderSettings
from tests.helpers import app_client

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
CREW = [
    {"role": "researcher", "systemPrompt": "Extract key claims and open questions."},
    {"role": "writer", "systemPrompt": "Draft a one-page summary.", "model": "fake/writer"},
]


async def create(client, **body):
    body.setdefault("name", "Spec reviewer")
    body.setdefault("model", "fake/test")
    response = await client.post("/v1/workflows", json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def test_create_returns_201_with_the_reference_shape(client):
    response = await client.post(
        "/v1/workflows",
        json={
            "name": "Spec reviewer",
            "description": "Summarize specs",
            "crew": CREW,
            "model": "fake/test",
        },
    )
    assert response.status_code == 201
    data = response.json()["data"]
    assert set(response.json()) == {"data"}
    assert data["name"] == "Spec reviewer"
    assert data["description"] == "Summarize specs"
    assert data["status"] == "active"
    assert data["model"] == "fake/test"
    assert data["crew"] == CREW
    assert data["human_in_the_loop"] is None
    assert data["tools"] == []
    assert ISO_MS.match(data["created_at"])
    assert "updated_at" not in data  # not on the create response, per the reference
    assert re.match(r"^[a-z0-9]{20,}$", data["id"])


async def test_defaults_crew_and_model(client):
    response = await client.post("/v1/workflows", json={"name": "Brief writer"})
    data = response.json()["data"]
    assert data["crew"] == DEFAULT_CREW
    assert [a["role"] for a in data["crew"]] == ["planner", "writer"]
    assert data["model"] == "local/smollm2"  # no provider configured: the embedded model
    assert data["description"] is None


async def test_default_model_is_claude_when_anthropic_is_configured(settings, api_key):
    configured = settings.model_copy(
        update={"providers": ProviderSettings(anthropic_api_key="sk-ant-x")}
    )
    async with app_client(configured, api_key, run_engine=False) as http:
        response = await http.post("/v1/workflows", json={"name": "x"})
    assert response.json()["data"]["model"] == "claude-sonnet-4-6"


async def test_list_is_most_recently_updated_first_with_updated_at(client):
    first = await create(client, name="first")
    second = await create(client, name="second")
    listed = (await client.get("/v1/workflows")).json()["data"]
    assert [w["id"] for w in listed] == [second["id"], first["id"]]
    assert all(ISO_MS.match(w["updated_at"]) for w in listed)
    await client.patch(f"/v1/workflows/{first['id']}", json={"description": "touched"})
    listed = (await client.get("/v1/workflows")).json()["data"]
    assert [w["id"] for w in listed] == [first["id"], second["id"]]


async def test_retrieve(client):
    created = await create(client)
    response = await client.get(f"/v1/workflows/{created['id']}")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["id"] == created["id"]
    assert data["updated_at"] == data["created_at"]


async def test_other_accounts_see_404_not_403(client, app, other_api_key):
    created = await create(client)
    headers = {"Authorization": f"Bearer {other_api_key}"}
    for method, path, body in [
        ("GET", f"/v1/workflows/{created['id']}", None),
        ("PATCH", f"/v1/workflows/{created['id']}", {"name": "stolen"}),
        ("DELETE", f"/v1/workflows/{created['id']}", None),
        ("POST", f"/v1/workflows/{created['id']}/runs", {"input": "x"}),
        ("GET", f"/v1/workflows/{created['id']}/runs", None),
    ]:
        response = await client.request(method, path, json=body, headers=headers)
        assert response.status_code == 404, (method, path)
        assert response.json() == {"error": "Not found"}
    listed = await client.get("/v1/workflows", headers=headers)
    assert listed.json() == {"data": []}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "Required"),
        ({"name": ""}, "String must contain at least 1 character(s)"),
        ({"name": "x" * 121}, "String must contain at most 120 character(s)"),
        ({"name": 5}, "Expected string, received number"),
        ({"name": None}, "Expected string, received null"),
        ({"name": "ok", "description": "d" * 501}, "String must contain at most 500 character(s)"),
        ({"name": "ok", "model": "m" * 81}, "String must contain at most 80 character(s)"),
        ({"name": "ok", "crew": []}, "Array must contain at least 1 element(s)"),
        ({"name": "ok", "crew": CREW * 6}, "Array must contain at most 10 element(s)"),
        ({"name": "ok", "crew": {}}, "Expected array, received object"),
        ({"name": "ok", "crew": [{"systemPrompt": "p"}]}, "Required"),
        (
            {"name": "ok", "crew": [{"role": "", "systemPrompt": "p"}]},
            "String must contain at least 1 character(s)",
        ),
        (
            {"name": "ok", "crew": [{"role": "r" * 61, "systemPrompt": "p"}]},
            "String must contain at most 60 character(s)",
        ),
        (
            {"name": "ok", "crew": [{"role": "r", "systemPrompt": "p" * 8001}]},
            "String must contain at most 8000 character(s)",
        ),
        (
            {"name": "ok", "crew": [{"role": "r", "systemPrompt": "p", "model": "m" * 81}]},
            "String must contain at most 80 character(s)",
        ),
        ({"name": "ok", "crew": ["planner"]}, "Expected object, received string"),
    ],
)
async def test_create_validation_messages(client, body, message):
    response = await client.post("/v1/workflows", json=body)
    assert response.status_code == 400
    assert response.json() == {"error": message}


async def test_body_that_is_not_an_object(client):
    response = await client.post("/v1/workflows", json=[1, 2])
    assert response.json() == {"error": "Expected object, received array"}


async def test_malformed_json(client):
    response = await client.post(
        "/v1/workflows", content=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {"error": "Malformed JSON body"}


async def test_unknown_model_is_a_400_at_create_time(client):
    response = await client.post("/v1/workflows", json={"name": "x", "model": "llama-3"})
    assert response.status_code == 400
    assert response.json()["error"].startswith("Unknown model 'llama-3'")
    response = await client.post(
        "/v1/workflows",
        json={"name": "x", "crew": [{"role": "r", "systemPrompt": "p", "model": "mystery/x"}]},
    )
    assert response.status_code == 400
    assert "mystery/x" in response.json()["error"]


@pytest.mark.parametrize(
    "model",
    [
        "claude-sonnet-4-6",
        "gpt-4.1",
        "o3-mini",
        "chatgpt-4o-latest",
        "anthropic/claude-x",
        "openai/llama3",
        "local/smollm2",
    ],
)
async def test_routable_models_are_accepted(client, model):
    response = await client.post("/v1/workflows", json={"name": "x", "model": model})
    assert response.status_code == 201, response.text


async def test_patch_fields_and_updated_at_moves(client):
    created = await create(client)
    before = (await client.get(f"/v1/workflows/{created['id']}")).json()["data"]
    response = await client.patch(
        f"/v1/workflows/{created['id']}",
        json={"name": "Renamed", "description": None, "crew": CREW[:1], "model": "fake/other"},
    )
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["name"] == "Renamed"
    assert data["description"] is None
    assert data["crew"] == CREW[:1]
    assert data["model"] == "fake/other"
    assert data["updated_at"] > before["updated_at"]
    assert data["created_at"] == before["created_at"]
    assert (await client.get(f"/v1/workflows/{created['id']}")).json()["data"] == data


async def test_patch_pause_and_reactivate(client):
    created = await create(client)
    paused = await client.patch(f"/v1/workflows/{created['id']}", json={"status": "paused"})
    assert paused.json()["data"]["status"] == "paused"
    trigger = await client.post(f"/v1/workflows/{created['id']}/runs", json={"input": "go"})
    assert trigger.status_code == 409
    assert trigger.json() == {"error": "Workflow is paused"}
    active = await client.patch(f"/v1/workflows/{created['id']}", json={"status": "active"})
    assert active.json()["data"]["status"] == "active"
    trigger = await client.post(f"/v1/workflows/{created['id']}/runs", json={"input": "go"})
    assert trigger.status_code == 202


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (
            {"status": "archived"},
            "Invalid enum value. Expected 'active' | 'paused', received 'archived'",
        ),
        ({"name": ""}, "String must contain at least 1 character(s)"),
        ({"crew": []}, "Array must contain at least 1 element(s)"),
        ({"model": "nope"}, None),
    ],
)
async def test_patch_validation(client, body, message):
    created = await create(client)
    response = await client.patch(f"/v1/workflows/{created['id']}", json=body)
    assert response.status_code == 400
    if message:
        assert response.json() == {"error": message}


async def test_patch_unknown_is_404_before_validation(client):
    response = await client.patch("/v1/workflows/nope", json={"status": "archived"})
    assert response.status_code == 404


async def test_delete_hides_the_workflow_but_keeps_its_runs(client):
    created = await create(client)
    run = (await client.post(f"/v1/workflows/{created['id']}/runs", json={"input": "hi"})).json()
    response = await client.delete(f"/v1/workflows/{created['id']}")
    assert response.status_code == 204
    assert response.content == b""
    assert (await client.get(f"/v1/workflows/{created['id']}")).status_code == 404
    assert (await client.get("/v1/workflows")).json()["data"] == []
    assert (await client.delete(f"/v1/workflows/{created['id']}")).status_code == 404
    kept = await client.get(f"/v1/runs/{run['data']['id']}")
    assert kept.status_code == 200


SMTP_HINT = "set LOOPLLAMA_SMTP_URL"
EMAILER = [{"role": "mailer", "systemPrompt": "Send the update.", "tools": ["send_email"]}]


async def test_send_email_without_smtp_is_refused_at_create_and_patch(client):
    response = await client.post(
        "/v1/workflows", json={"name": "Mailer", "model": "fake/test", "crew": EMAILER}
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error.startswith("Agent 'mailer' uses send_email, but this server has no SMTP server")
    assert SMTP_HINT in error and "LOOPLLAMA_SMTP_FROM" in error

    workflow = await create(client)
    response = await client.patch(f"/v1/workflows/{workflow['id']}", json={"crew": EMAILER})
    assert response.status_code == 400
    assert SMTP_HINT in response.json()["error"]
    # Unchanged by the refused PATCH.
    stored = (await client.get(f"/v1/workflows/{workflow['id']}")).json()["data"]
    assert stored["crew"] == workflow["crew"]


async def test_send_email_with_smtp_configured_is_accepted(settings, api_key):
    configured = settings.model_copy(
        update={
            "providers": ProviderSettings(anthropic_api_key="sk-ant-x"),
            "tools": settings.tools.model_copy(
                update={"smtp_url": SecretStr("smtp://127.0.0.1:2525")}
            ),
        }
    )
    async with app_client(configured, api_key, run_engine=False) as http:
        response = await http.post(
            "/v1/workflows",
            json={"name": "Mailer", "model": "claude-sonnet-4-6", "crew": EMAILER},
        )
    assert response.status_code == 201, response.text
    assert response.json()["data"]["crew"] == EMAILER
