"""Helpers for the human-in-the-loop tests."""

from __future__ import annotations

from typing import Any

from tests.helpers import wait_for_run


async def make_workflow(client, *, crew=None, hitl=None, tools=None, model="fake/test") -> dict:
    body: dict[str, Any] = {
        "name": "hitl",
        "model": model,
        "crew": crew or [{"role": "assistant", "systemPrompt": "Help.", "tools": ["send_email"]}],
    }
    if hitl is not None:
        body["human_in_the_loop"] = hitl
    if tools is not None:
        body["tools"] = tools
    response = await client.post("/v1/workflows", json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def start(client, workflow, text="go") -> str:
    response = await client.post(f"/v1/workflows/{workflow['id']}/runs", json={"input": text})
    assert response.status_code == 202, response.text
    return response.json()["data"]["id"]


async def respond(client, run_id, **body):
    return await client.post(f"/v1/runs/{run_id}/respond", json=body)


async def settle(client, run_id, timeout=10.0) -> dict:
    return await wait_for_run(client, run_id, timeout=timeout)


def tool_results(request) -> list:
    """The tool results the model received in its last user turn."""
    return [p for p in request.messages[-1].parts if p.type == "tool_result"]
