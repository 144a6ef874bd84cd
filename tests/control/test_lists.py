"""Run lists: across workflows, filters, keyset cursor and has_more (part 7)."""

from __future__ import annotations

from tests.control.support import make_workflow, settle, trigger


async def test_lists_across_workflows_with_filters_and_cursor(client, app, fake_provider):
    first = await make_workflow(client, name="a", crew=[{"role": "w", "systemPrompt": "W."}])
    second = await make_workflow(client, name="b", crew=[{"role": "w", "systemPrompt": "W."}])
    made = []
    for index in range(5):
        run = await trigger(client, (first if index % 2 == 0 else second)["id"], f"r{index}")
        await settle(client, run["id"])
        made.append(run["id"])
    await app.state.services.dispatcher.stop()
    queued = await trigger(client, first["id"], "queued")
    made.append(queued["id"])
    newest_first = made[::-1]

    everything = (await client.get("/v1/runs")).json()
    assert [r["id"] for r in everything["data"]] == newest_first
    assert everything["has_more"] is False
    assert all("steps" not in r for r in everything["data"])

    page = (await client.get("/v1/runs?limit=2")).json()
    assert ([r["id"] for r in page["data"]], page["has_more"]) == (newest_first[:2], True)
    page = (await client.get(f"/v1/runs?limit=2&after={newest_first[1]}")).json()
    assert ([r["id"] for r in page["data"]], page["has_more"]) == (newest_first[2:4], True)
    page = (await client.get(f"/v1/runs?limit=2&after={newest_first[3]}")).json()
    assert ([r["id"] for r in page["data"]], page["has_more"]) == (newest_first[4:], False)

    only = (await client.get(f"/v1/runs?workflow_id={second['id']}")).json()["data"]
    assert [r["id"] for r in only] == [made[3], made[1]]
    only = (await client.get("/v1/runs?status=queued")).json()["data"]
    assert [r["id"] for r in only] == [queued["id"]]
    listed = await client.get(f"/v1/workflows/{first['id']}/runs?status=completed&limit=1")
    body = listed.json()
    assert ([r["id"] for r in body["data"]], body["has_more"]) == ([made[4]], True)
    plain = (await client.get(f"/v1/workflows/{first['id']}/runs")).json()
    assert [r["id"] for r in plain["data"]] == [queued["id"], made[4], made[2], made[0]]


async def test_bad_list_parameters_are_400s(client, other_api_key, app):
    import httpx

    workflow = await make_workflow(client)
    for query, message in (
        ("limit=0", "Invalid 'limit': Number must be greater than or equal to 1"),
        ("limit=101", "Invalid 'limit': Number must be less than or equal to 100"),
        ("limit=x", "Invalid 'limit': Expected number, received string"),
        (
            "status=done",
            "Invalid 'status': Invalid enum value. Expected 'queued' | 'running' | "
            "'waiting_input' | 'completed' | 'failed' | 'cancelled', received 'done'",
        ),
        ("after=nope", "Invalid 'after': not a run of this account"),
        ("after=", "Invalid 'after': not an id"),
        ("after=a%00b", "Invalid 'after': not an id"),
        ("workflow_id=%C3%A9", "Invalid 'workflow_id': not an id"),
    ):
        for path in ("/v1/runs", f"/v1/workflows/{workflow['id']}/runs"):
            response = await client.get(f"{path}?{query}")
            assert (response.status_code, response.json()) == (400, {"error": message}), query
    # Another account's run is no cursor here, and its runs are never listed.
    run = await trigger(client, workflow["id"])
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {other_api_key}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers=headers
    ) as other:
        response = await other.get(f"/v1/runs?after={run['id']}")
        assert response.status_code == 400
        assert (await other.get("/v1/runs")).json() == {"data": [], "has_more": False}
        response = await other.get(f"/v1/workflows/{workflow['id']}/runs?limit=x")
        assert response.status_code == 404  # the lookup comes before the parameters
