"""The OpenAPI document describes what the server really does."""

from __future__ import annotations

import jsonschema


async def test_document_lists_every_route_with_its_status_codes(anonymous):
    document = (await anonymous.get("/openapi.json")).json()
    paths = document["paths"]
    expected = {
        ("/v1/workflows", "get", "200"),
        ("/v1/workflows", "post", "201"),
        ("/v1/workflows/{workflow_id}", "get", "200"),
        ("/v1/workflows/{workflow_id}", "patch", "200"),
        ("/v1/workflows/{workflow_id}", "delete", "204"),
        ("/v1/workflows/{workflow_id}/runs", "post", "202"),
        ("/v1/workflows/{workflow_id}/runs", "get", "200"),
        ("/v1/runs/{run_id}", "get", "200"),
        ("/v1/runs/{run_id}/respond", "post", "202"),
        ("/v1/runs", "get", "200"),
        ("/v1/runs/{run_id}/cancel", "post", "202"),
        ("/v1/runs/{run_id}/retry", "post", "202"),
        ("/v1/runs/{run_id}/fork", "post", "202"),
        ("/v1/workflows/{workflow_id}/versions", "get", "200"),
        ("/v1/workflows/{workflow_id}/versions/{version}", "get", "200"),
        ("/v1/workflows/{workflow_id}/versions/{version}/restore", "post", "200"),
    }
    trigger = ("/v1/workflows/{workflow_id}/runs", "post")
    for path, method, status in expected:
        responses = paths[path][method]["responses"]
        assert status in responses, (path, method)
        # FastAPI's default 422 never; the trigger's idempotency mismatch is a real one.
        assert "401" in responses and ("422" in responses) == ((path, method) == trigger)
    assert paths["/v1/workflows/{workflow_id}/runs"]["post"]["responses"]["409"]
    assert paths["/v1/workflows/{workflow_id}"]["patch"]["responses"]["403"]
    parameters = paths["/v1/workflows/{workflow_id}/runs"]["post"]["parameters"]
    assert {p["name"] for p in parameters} == {"workflow_id", "Idempotency-Key"}
    accepted = paths["/v1/workflows/{workflow_id}/runs"]["post"]["responses"]["202"]
    assert "Idempotent-Replayed" in accepted["headers"] and "content" in accepted


def _resolve(document, schema):
    """Inline the document's $refs so jsonschema can validate a response against it."""
    if isinstance(schema, dict):
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            return _resolve(document, document["components"]["schemas"][name])
        return {k: _resolve(document, v) for k, v in schema.items()}
    if isinstance(schema, list):
        return [_resolve(document, v) for v in schema]
    return schema


async def test_real_responses_match_the_documented_schemas(client, fake_provider):
    from tests.helpers import wait_for_run

    document = (await client.get("/openapi.json")).json()

    def check(path, method, status, body):
        schema = document["paths"][path][method]["responses"][str(status)]["content"][
            "application/json"
        ]["schema"]
        jsonschema.validate(body, _resolve(document, schema))

    created = await client.post("/v1/workflows", json={"name": "x", "model": "fake/t"})
    check("/v1/workflows", "post", 201, created.json())
    workflow_id = created.json()["data"]["id"]
    check("/v1/workflows", "get", 200, (await client.get("/v1/workflows")).json())
    run = await client.post(f"/v1/workflows/{workflow_id}/runs", json={"input": "hi"})
    check("/v1/workflows/{workflow_id}/runs", "post", 202, run.json())
    await wait_for_run(client, run.json()["data"]["id"])
    retrieved = await client.get(f"/v1/runs/{run.json()['data']['id']}")
    check("/v1/runs/{run_id}", "get", 200, retrieved.json())
    listed = await client.get(f"/v1/workflows/{workflow_id}/runs")
    check("/v1/workflows/{workflow_id}/runs", "get", 200, listed.json())
    bad = await client.post("/v1/workflows", json={})
    check("/v1/workflows", "post", 400, bad.json())

    run_id = run.json()["data"]["id"]
    check("/v1/runs", "get", 200, (await client.get("/v1/runs?limit=1")).json())
    fork = await client.post(f"/v1/runs/{run_id}/fork", json={"from_step": 1})
    check("/v1/runs/{run_id}/fork", "post", 202, fork.json())
    cancel = await client.post(f"/v1/runs/{fork.json()['data']['id']}/cancel")
    if cancel.status_code == 202:
        check("/v1/runs/{run_id}/cancel", "post", 202, cancel.json())
        retry = await client.post(f"/v1/runs/{fork.json()['data']['id']}/retry")
        check("/v1/runs/{run_id}/retry", "post", 202, retry.json())
    check(
        "/v1/runs/{run_id}/cancel",
        "post",
        409,
        (await client.post(f"/v1/runs/{run_id}/cancel")).json(),
    )
    versions = f"/v1/workflows/{workflow_id}/versions"
    check("/v1/workflows/{workflow_id}/versions", "get", 200, (await client.get(versions)).json())
    one = (await client.get(f"{versions}/1")).json()
    check("/v1/workflows/{workflow_id}/versions/{version}", "get", 200, one)
    restored = (await client.post(f"{versions}/1/restore")).json()
    check("/v1/workflows/{workflow_id}/versions/{version}/restore", "post", 200, restored)
    await client.patch(f"/v1/workflows/{workflow_id}", json={"locked": True})
    locked = (await client.delete(f"/v1/workflows/{workflow_id}")).json()
    check("/v1/workflows/{workflow_id}", "delete", 403, locked)
