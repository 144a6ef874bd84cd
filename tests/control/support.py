"""Helpers for the run-control tests: workflows, triggers, waiting for a status."""

from __future__ import annotations

from typing import Any

from tests.helpers import wait_for_run

CREW3 = [
    {"role": "researcher", "systemPrompt": "Research."},
    {"role": "analyst", "systemPrompt": "Analyse."},
    {"role": "writer", "systemPrompt": "Write."},
]


async def make_workflow(client, **body: Any) -> dict:
    body.setdefault("name", "control")
    body.setdefault("model", "fake/test")
    body.setdefault("crew", CREW3)
    response = await client.post("/v1/workflows", json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def trigger(client, workflow_id: str, text: str = "go", **extra: Any) -> dict:
    response = await client.post(f"/v1/workflows/{workflow_id}/runs", json={"input": text, **extra})
    assert response.status_code == 202, response.text
    return response.json()["data"]


async def settle(
    client,
    run_id: str,
    statuses=("completed", "failed", "waiting_input", "cancelled"),
    timeout=10.0,
) -> dict:
    return await wait_for_run(client, run_id, statuses, timeout=timeout)
