"""Workflow versions, pinned triggers, restore and locks (part 8), on both databases."""

from __future__ import annotations

from tests.control.support import make_workflow, settle, trigger

PROMPT_V2 = [{"role": "writer", "systemPrompt": "Write, version two."}]


async def test_a_new_workflow_is_version_1_unlocked(client):
    workflow = await make_workflow(client)
    assert (workflow["version"], workflow["locked"], workflow["max_run_seconds"]) == (
        1,
        False,
        None,
    )
    versions = (await client.get(f"/v1/workflows/{workflow['id']}/versions")).json()["data"]
    assert [v["version"] for v in versions] == [1]
    assert set(versions[0]) == {
        "version",
        "model",
        "crew",
        "human_in_the_loop",
        "tools",
        "max_run_seconds",
        "max_cost_usd",
        "max_tokens",
        "created_at",
    }
    assert versions[0]["crew"] == workflow["crew"]


async def test_definition_changes_add_versions_and_bookkeeping_does_not(client):
    workflow = await make_workflow(client)
    path = f"/v1/workflows/{workflow['id']}"
    for body in (
        {"name": "renamed"},
        {"description": "d"},
        {"status": "paused"},
        {"status": "active"},
        {"locked": True},
        {"locked": False},
    ):
        response = await client.patch(path, json=body)
        assert response.status_code == 200, response.text
        assert response.json()["data"]["version"] == 1
    assert (await client.patch(path, json={"crew": PROMPT_V2})).json()["data"]["version"] == 2
    assert (await client.patch(path, json={"max_run_seconds": 30})).json()["data"]["version"] == 3
    # The same value again is no change.
    assert (await client.patch(path, json={"max_run_seconds": 30})).json()["data"]["version"] == 3
    versions = (await client.get(f"{path}/versions")).json()["data"]
    assert [v["version"] for v in versions] == [3, 2, 1]
    assert versions[0]["max_run_seconds"] == 30 and versions[1]["max_run_seconds"] is None
    one = (await client.get(f"{path}/versions/1")).json()["data"]
    assert one["crew"] == workflow["crew"]
    for bad in ("4", "0", "x", "99999999999"):
        response = await client.get(f"{path}/versions/{bad}")
        assert (response.status_code, response.json()) == (404, {"error": "Version not found"})


async def test_runs_record_their_version_and_triggers_may_pin_one(client, fake_provider):
    workflow = await make_workflow(client, crew=[{"role": "writer", "systemPrompt": "v1"}])
    path = f"/v1/workflows/{workflow['id']}"
    await client.patch(path, json={"crew": PROMPT_V2})
    current = await trigger(client, workflow["id"])
    assert current["workflow_version"] == 2
    pinned = await trigger(client, workflow["id"], version=1)
    assert pinned["workflow_version"] == 1
    await settle(client, current["id"])
    await settle(client, pinned["id"])
    systems = sorted(request.system for request in fake_provider.requests)
    assert systems == ["Write, version two.", "v1"]
    response = await client.post(f"{path}/runs", json={"input": "x", "version": 7})
    assert (response.status_code, response.json()) == (404, {"error": "Version not found"})
    response = await client.post(f"{path}/runs", json={"input": "x", "version": "1"})
    assert response.status_code == 400


async def test_restore_makes_an_old_definition_current_as_a_new_version(client):
    workflow = await make_workflow(client)
    path = f"/v1/workflows/{workflow['id']}"
    await client.patch(path, json={"crew": PROMPT_V2, "model": "fake/other"})
    response = await client.post(f"{path}/versions/1/restore")
    assert response.status_code == 200, response.text
    restored = response.json()["data"]
    assert restored["version"] == 3
    assert (restored["crew"], restored["model"]) == (workflow["crew"], workflow["model"])
    assert (await client.get(path)).json()["data"]["version"] == 3
    response = await client.post(f"{path}/versions/9/restore")
    assert (response.status_code, response.json()) == (404, {"error": "Version not found"})


async def test_a_locked_workflow_refuses_changes_restore_and_delete(client):
    workflow = await make_workflow(client)
    path = f"/v1/workflows/{workflow['id']}"
    assert (await client.patch(path, json={"locked": True})).json()["data"]["locked"] is True
    locked = (403, {"error": "Workflow is locked"})
    for body in ({"name": "x"}, {"crew": PROMPT_V2}, {"locked": True, "description": "d"}):
        response = await client.patch(path, json=body)
        assert (response.status_code, response.json()) == locked
    response = await client.post(f"{path}/versions/1/restore")
    assert (response.status_code, response.json()) == locked
    response = await client.delete(path)
    assert (response.status_code, response.json()) == locked
    # 404 and 400 come first.
    assert (await client.patch("/v1/workflows/nope", json={"name": "x"})).status_code == 404
    assert (await client.patch(path, json={"name": ""})).status_code == 400
    assert (await client.post(f"{path}/versions/5/restore")).status_code == 404
    # Status changes and triggers still work; unlocking lifts it all.
    assert (await client.patch(path, json={"status": "paused"})).status_code == 200
    assert (await client.patch(path, json={"status": "active"})).status_code == 200
    await trigger(client, workflow["id"])
    assert (await client.patch(path, json={"locked": False})).status_code == 200
    assert (await client.patch(path, json={"name": "x"})).status_code == 200
    assert (await client.delete(path)).status_code == 204


async def test_max_run_seconds_is_validated(client):
    for value, message in (
        (0, "Number must be greater than or equal to 1"),
        (86_401, "Number must be less than or equal to 86400"),
        ("5", "Expected number, received string"),
    ):
        response = await client.post(
            "/v1/workflows", json={"name": "x", "model": "fake/t", "max_run_seconds": value}
        )
        assert (response.status_code, response.json()) == (400, {"error": message})


async def test_versions_of_another_account_are_invisible(client, app, other_api_key):
    import httpx

    workflow = await make_workflow(client)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {other_api_key}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers=headers
    ) as other:
        for method, suffix in (
            ("GET", "/versions"),
            ("GET", "/versions/1"),
            ("POST", "/versions/1/restore"),
        ):
            response = await other.request(method, f"/v1/workflows/{workflow['id']}{suffix}")
            assert (response.status_code, response.json()) == (404, {"error": "Not found"})
