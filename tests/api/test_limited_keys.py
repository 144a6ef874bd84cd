"""Workflow-limited keys: the other workflows and their runs do not exist for them.

Generated from the app's route table: every route that names a workflow or a run answers 404
for one outside the limit and goes on for one inside it.
"""

from __future__ import annotations

import pytest

from tests.api.keys_support import PARAM, fill, make_key, route_table
from tests.helpers import app_client, wait_for_run

ROUTES = route_table()
SCOPED_ROUTES = [(m, p) for m, p, _ in ROUTES if "{workflow_id}" in p or "{run_id}" in p]
NOT_FOUND = (404, {"error": "Not found"})


@pytest.fixture
async def two_workflows(client) -> dict[str, dict[str, str]]:
    """Workflows `mine` and `other`, each with a finished run."""
    made = {}
    for name in ("mine", "other"):
        body = {"name": name, "model": "fake/t"}
        workflow_id = (await client.post("/v1/workflows", json=body)).json()["data"]["id"]
        run = await client.post(f"/v1/workflows/{workflow_id}/runs", json={"input": "hi"})
        run_id = run.json()["data"]["id"]
        await wait_for_run(client, run_id)
        made[name] = {"workflow_id": workflow_id, "run_id": run_id}
    return made


async def test_routes_hide_what_is_outside_the_limit(settings, two_workflows):
    mine, other = two_workflows["mine"], two_workflows["other"]
    _, key = await make_key(settings, workflow_ids=[mine["workflow_id"]])
    async with app_client(settings, key, run_engine=False) as limited:
        for method, path in SCOPED_ROUTES:
            response = await limited.request(method, fill(path, **other), content=b"{bad")
            outcome = (response.status_code, response.json())
            assert outcome == NOT_FOUND, (method, path, outcome)
        # Inside the limit each route goes on to its own checks (deletes last). Routes that
        # name something more (a version number...) would 404 on our made-up value: skipped.
        inside = [(m, p) for m, p in SCOPED_ROUTES if set(PARAM.findall(p)) <= set(mine)]
        for method, path in sorted(inside, key=lambda route: route[0] == "DELETE"):
            response = await limited.request(method, fill(path, **mine), content=b"{bad")
            assert response.status_code not in (401, 403, 404), (method, path, response.text)


async def test_lists_are_filtered_and_creating_workflows_is_refused(settings, two_workflows):
    mine = two_workflows["mine"]
    _, key = await make_key(settings, scope="admin", workflow_ids=[mine["workflow_id"]])
    async with app_client(settings, key, run_engine=False) as limited:
        listed = (await limited.get("/v1/workflows")).json()["data"]
        assert [w["id"] for w in listed] == [mine["workflow_id"]]
        runs = (await limited.get(f"/v1/workflows/{mine['workflow_id']}/runs")).json()["data"]
        assert [r["id"] for r in runs] == [mine["run_id"]]
        response = await limited.post("/v1/workflows", json={"name": "new", "model": "fake/t"})
        assert (response.status_code, response.json()) == (
            403,
            {"error": "Insufficient permissions"},
        )


async def test_a_limited_run_key_triggers_only_its_workflows(settings, two_workflows):
    mine, other = two_workflows["mine"], two_workflows["other"]
    _, key = await make_key(settings, scope="run", workflow_ids=[mine["workflow_id"]])
    async with app_client(settings, key, run_engine=False) as limited:
        path = "/v1/workflows/{}/runs"
        response = await limited.post(path.format(other["workflow_id"]), json={"input": "x"})
        assert (response.status_code, response.json()) == NOT_FOUND
        response = await limited.post(path.format(mine["workflow_id"]), json={"input": "x"})
        assert response.status_code == 202
        assert response.json()["data"]["workflow_id"] == mine["workflow_id"]


async def test_a_key_of_another_account_sees_nothing_of_this_one(settings, two_workflows):
    mine = two_workflows["mine"]
    _, key = await make_key(settings, account="globex", workflow_ids=[mine["workflow_id"]])
    async with app_client(settings, key, run_engine=False) as stranger:
        response = await stranger.get(f"/v1/workflows/{mine['workflow_id']}")
        assert (response.status_code, response.json()) == NOT_FOUND
        assert (await stranger.get("/v1/workflows")).json() == {"data": []}
