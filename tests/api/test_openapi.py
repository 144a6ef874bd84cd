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
        ("/v1/keys", "post", "201"),
        ("/v1/keys", "get", "200"),
        ("/v1/keys/{key_id}", "delete", "204"),
        ("/v1/runs", "get", "200"),
        ("/v1/runs/{run_id}/cancel", "post", "202"),
        ("/v1/runs/{run_id}/retry", "post", "202"),
        ("/v1/runs/{run_id}/fork", "post", "202"),
        ("/v1/workflows/{workflow_id}/versions", "get", "200"),
        ("/v1/workflows/{workflow_id}/versions/{version}", "get", "200"),
        ("/v1/workflows/{workflow_id}/versions/{version}/restore", "post", "200"),
        ("/v1/usage", "get", "200"),
    }
    trigger = ("/v1/workflows/{workflow_id}/runs", "post")
    for path, method, status in expected:
        responses = paths[path][method]["responses"]
        assert status in responses, (path, method)
        # FastAPI's default 422 never; the trigger's idempotency mismatch is a real one.
        assert "401" in responses and "429" in responses
        assert ("422" in responses) == ((path, method) == trigger)
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
    usage = (await client.get("/v1/usage")).json()
    assert usage["data"], "the run above used the fake model"
    check("/v1/usage", "get", 200, usage)
    check("/v1/usage", "get", 400, (await client.get("/v1/usage?start=yesterday")).json())


async def test_success_schemas_are_bare_refs_and_every_id_route_lists_404(anonymous):
    """Issue 9: `{"$ref": ..., "type": "string"}` made every JSON success a violation in
    OpenAPI 3.1, and PATCH did not list its 404."""
    document = (await anonymous.get("/openapi.json")).json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                json_body = (response.get("content") or {}).get("application/json")
                if json_body is not None:
                    assert set(json_body["schema"]) == {"$ref"}, (path, method, status)
            if "{" in path:
                assert "404" in operation["responses"], (path, method)
    assert document["paths"]["/healthz"]["get"]["security"] == []


async def test_the_document_states_the_input_rules(anonymous):
    schemas = (await anonymous.get("/openapi.json")).json()["components"]["schemas"]
    tool = schemas["CustomToolIn"]
    assert tool["additionalProperties"] is False
    assert tool["properties"]["name"]["pattern"] == "^[a-z0-9_-]+$"
    assert tool["properties"]["name"]["maxLength"] == 64
    assert tool["properties"]["headers"]["additionalProperties"] is False
    assert schemas["WorkflowCreate"]["properties"]["model"]["minLength"] == 1
    assert schemas["WorkflowCreate"]["properties"]["name"]["pattern"] == "^[^\\u0000]*$"
    assert schemas["RespondIn"]["then"] == {"required": ["input"]}


async def test_key_responses_match_the_documented_schemas(client):
    document = (await client.get("/openapi.json")).json()

    def check(path, method, status, body):
        schema = document["paths"][path][method]["responses"][str(status)]["content"][
            "application/json"
        ]["schema"]
        jsonschema.validate(body, _resolve(document, schema))

    created = await client.post("/v1/keys", json={"label": "x", "scope": "read"})
    check("/v1/keys", "post", 201, created.json())
    check("/v1/keys", "get", 200, (await client.get("/v1/keys")).json())
    check("/v1/keys", "post", 400, (await client.post("/v1/keys", json={"scope": 1})).json())
    headers = {"Authorization": f"Bearer {created.json()['data']['key']}"}
    denied = await client.get("/v1/keys", headers=headers)
    check("/v1/keys", "get", 403, denied.json())
