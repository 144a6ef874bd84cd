"""The request examples of the OpenAPI document are real: the API accepts each one."""

from __future__ import annotations

import pytest

from loopllama.providers import fake
from tests.hitl.support import make_workflow, settle, start


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_each_request_example_is_accepted(client, fake_provider):
    document = (await client.get("/openapi.json")).json()

    def example(path: str, method: str):
        body = document["paths"][path][method]["requestBody"]["content"]["application/json"]
        return body["example"]

    created = await client.post("/v1/workflows", json=example("/v1/workflows", "post"))
    assert created.status_code == 201, created.text
    workflow_id = created.json()["data"]["id"]
    triggered = await client.post(
        f"/v1/workflows/{workflow_id}/runs",
        json=example("/v1/workflows/{workflow_id}/runs", "post"),
    )
    assert triggered.status_code == 202, triggered.text
    patched = await client.patch(
        f"/v1/workflows/{workflow_id}", json=example("/v1/workflows/{workflow_id}", "patch")
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["data"]["status"] == "paused"
    fake_provider.enqueue(fake.tool_call("ask_human", {"question": "Which market?"}))
    asker = await make_workflow(
        client, crew=[{"role": "a", "systemPrompt": "Ask."}], hitl={"ask_questions": True}
    )
    run_id = await start(client, asker)
    assert (await settle(client, run_id))["status"] == "waiting_input"
    answered = await client.post(
        f"/v1/runs/{run_id}/respond", json=example("/v1/runs/{run_id}/respond", "post")
    )
    assert answered.status_code < 300, answered.text

    for operations in document["paths"].values():
        for operation in operations.values():
            for status, answer in operation["responses"].items():
                if int(status) >= 400:
                    assert answer["content"]["application/json"]["example"]["error"]
