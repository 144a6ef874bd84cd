"""Scopes: every /v1 route declares one, and every route answers every scope as part 9b says.

The route table is the app's own: a route added later is checked here without editing this
file (and fails the first test until it declares its scope).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fastapi import APIRouter, FastAPI

from loopllama.api.deps import AccountDep
from loopllama.api.openapi import install_openapi
from loopllama.permissions import SCOPES
from tests.api.keys_support import (
    expected_scope,
    fill,
    make_key,
    route_table,
    set_key_columns,
    v1_routes,
)
from tests.helpers import app_client

ROUTES = route_table()
FORBIDDEN = (403, {"error": "Insufficient permissions"})


def undeclared_operations(document: dict) -> list[tuple[str, str]]:
    return [
        (method, path)
        for method, path, operation in v1_routes(document)
        if operation.get("x-required-scope") not in SCOPES
    ]


async def test_every_v1_route_declares_a_scope(anonymous):
    document = (await anonymous.get("/openapi.json")).json()
    assert len(v1_routes(document)) >= 12
    assert undeclared_operations(document) == []
    for _, _, operation in v1_routes(document):
        assert operation["security"] == [{"bearer": [operation["x-required-scope"]]}]
        assert operation["responses"]["403"]["content"]


def test_a_route_without_a_scope_is_caught():
    """The check above can fail: a route that only authenticates is reported."""
    router = APIRouter()

    @router.get("/v1/forgotten")
    async def forgotten(account: AccountDep) -> dict:
        return {}

    app = FastAPI()
    app.include_router(router)
    install_openapi(app)
    assert undeclared_operations(app.openapi()) == [("GET", "/v1/forgotten")]


@pytest.mark.parametrize(("method", "path", "operation"), ROUTES, ids=lambda v: str(v)[:40])
def test_each_route_needs_the_scope_of_part_9b(method, path, operation):
    assert operation.get("x-required-scope") == expected_scope(method, path)


@pytest.mark.parametrize("scope", SCOPES)
async def test_every_route_against_every_scope(settings, app, scope):
    """Outside its scope a key gets 403 on every route, whatever the ids and the body; within
    it, the route goes on to its own checks (here 404 for the made-up ids, 400 for the body)."""
    _, key = await make_key(settings, scope=scope)
    async with app_client(settings, key, run_engine=False) as client:
        for method, path, _ in ROUTES:
            response = await client.request(method, fill(path), content=b"{bad")
            outcome = (response.status_code, response.json() if response.content else None)
            allowed = SCOPES.index(scope) >= SCOPES.index(expected_scope(method, path))
            if allowed:
                assert response.status_code not in (401, 403), (method, path, outcome)
            else:
                assert outcome == FORBIDDEN, (method, path, outcome)


async def test_order_of_checks_401_403_404_400(settings, client):
    _, read_key = await make_key(settings, scope="read")
    headers = {"Authorization": f"Bearer {read_key}"}
    # Out of scope beats a missing workflow and a malformed body.
    response = await client.post("/v1/workflows/nope/runs", content=b"{bad", headers=headers)
    assert (response.status_code, response.json()) == FORBIDDEN
    # A bad key beats the scope.
    response = await client.post(
        "/v1/workflows/nope/runs",
        content=b"{bad",
        headers={"Authorization": "Bearer ll_live_unknown"},
    )
    assert response.status_code == 401
    # Within scope: 404 before 400.
    _, run_key = await make_key(settings, scope="run")
    headers = {"Authorization": f"Bearer {run_key}"}
    response = await client.post("/v1/workflows/nope/runs", content=b"{bad", headers=headers)
    assert (response.status_code, response.json()) == (404, {"error": "Not found"})


async def test_an_expired_key_is_401_before_its_scope_is_looked_at(settings, client):
    key_id, key = await make_key(settings, scope="read")
    await set_key_columns(settings, key_id, expires_at=datetime.now(UTC) - timedelta(seconds=1))
    response = await client.post(
        "/v1/workflows", content=b"{}", headers={"Authorization": f"Bearer {key}"}
    )
    assert (response.status_code, response.json()) == (401, {"error": "Invalid API key"})


async def test_a_read_key_reads_and_a_run_key_runs(settings, client):
    workflow = (await client.post("/v1/workflows", json={"name": "w", "model": "fake/t"})).json()
    workflow_id = workflow["data"]["id"]
    _, read_key = await make_key(settings, scope="read")
    _, run_key = await make_key(settings, scope="run")
    read = {"Authorization": f"Bearer {read_key}"}
    run = {"Authorization": f"Bearer {run_key}"}
    assert (await client.get(f"/v1/workflows/{workflow_id}", headers=read)).status_code == 200
    trigger = f"/v1/workflows/{workflow_id}/runs"
    response = await client.post(trigger, json={"input": "hi"}, headers=read)
    assert (response.status_code, response.json()) == FORBIDDEN
    response = await client.post(trigger, json={"input": "hi"}, headers=run)
    assert response.status_code == 202
    response = await client.patch(f"/v1/workflows/{workflow_id}", json={"name": "x"}, headers=run)
    assert (response.status_code, response.json()) == FORBIDDEN
    assert (await client.get("/v1/keys", headers=run)).status_code == 403


async def test_scope_comes_before_the_workflow_limit(settings, client):
    """A limited key out of its scope gets 403 even for a workflow it cannot see (the 403 says
    nothing about the resource), and 404 within its scope."""
    body = {"name": "w", "model": "fake/t"}
    mine = (await client.post("/v1/workflows", json=body)).json()["data"]["id"]
    other = (await client.post("/v1/workflows", json=body)).json()["data"]["id"]
    _, key = await make_key(settings, scope="read", workflow_ids=[mine])
    headers = {"Authorization": f"Bearer {key}"}
    response = await client.patch(f"/v1/workflows/{other}", content=b"{bad", headers=headers)
    assert (response.status_code, response.json()) == FORBIDDEN
    response = await client.get(f"/v1/workflows/{other}", headers=headers)
    assert (response.status_code, response.json()) == (404, {"error": "Not found"})
