"""Runs through HTTP: trigger, list, retrieve, the run and step objects, failed runs."""

from __future__ import annotations

import re

import pytest

from loopllama.providers.base import ProviderStatusError, ProviderTimeout
from loopllama.providers.fake import reply
from tests.helpers import wait_for_run

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
RUN_KEYS = {
    "id",
    "workflow_id",
    "status",
    "input",
    "output",
    "error",
    "total_steps",
    "tokens_in",
    "tokens_out",
    "started_at",
    "finished_at",
    "created_at",
    "pending",
    "workflow_version",
    "forked_from",
    "cost_usd",
}
STEP_KEYS = {
    "id",
    "order",
    "role",
    "model",
    "input",
    "output",
    "error",
    "tokens_in",
    "tokens_out",
    "started_at",
    "finished_at",
    "forked",
    "tool_calls",
    "cost_usd",
}


@pytest.fixture
async def workflow(client):
    response = await client.post(
        "/v1/workflows",
        json={
            "name": "Brief writer",
            "model": "fake/test",
            "crew": [
                {"role": "planner", "systemPrompt": "Plan it."},
                {"role": "writer", "systemPrompt": "Write it.", "model": "fake/writer-model"},
            ],
        },
    )
    return response.json()["data"]


async def trigger(client, workflow, text="Draft a brief."):
    response = await client.post(f"/v1/workflows/{workflow['id']}/runs", json={"input": text})
    assert response.status_code == 202, response.text
    return response.json()["data"]


async def test_trigger_answers_202_with_a_queued_run(client, workflow):
    run = await trigger(client, workflow, "Draft a 200-word brief.")
    assert set(run) == RUN_KEYS
    assert run["status"] == "queued"
    assert run["workflow_id"] == workflow["id"]
    assert run["input"] == "Draft a 200-word brief."
    assert run["output"] is None and run["error"] is None and run["pending"] is None
    assert run["total_steps"] == run["tokens_in"] == run["tokens_out"] == 0
    assert run["started_at"] is None and run["finished_at"] is None
    assert ISO_MS.match(run["created_at"])


async def test_a_run_executes_each_agent_in_order(client, workflow, fake_provider):
    fake_provider.enqueue(
        reply("1. Define flags", 180, 120), reply("Feature flags let...", 232, 166)
    )
    run = await trigger(client, workflow, "Draft a brief.")
    done = await wait_for_run(client, run["id"])
    assert done["status"] == "completed"
    assert done["output"] == "Feature flags let..."
    assert done["total_steps"] == 2
    assert (done["tokens_in"], done["tokens_out"]) == (412, 286)
    assert ISO_MS.match(done["started_at"]) and ISO_MS.match(done["finished_at"])
    assert done["created_at"] <= done["started_at"] <= done["finished_at"]
    planner, writer = done["steps"]
    assert set(planner) == STEP_KEYS
    assert (planner["order"], planner["role"], planner["model"]) == (0, "planner", "fake/test")
    assert planner["input"] == "Draft a brief."
    assert planner["output"] == "1. Define flags"
    assert (planner["tokens_in"], planner["tokens_out"]) == (180, 120)
    assert (writer["order"], writer["role"], writer["model"]) == (1, "writer", "fake/writer-model")
    assert writer["input"] == (
        "Original request:\nDraft a brief.\n\nPrior agent output:\n--- planner ---\n1. Define flags"
    )
    assert planner["finished_at"] <= writer["started_at"]
    # The system prompt is the agent's; the user message is the step input.
    first, second = fake_provider.requests
    assert first.system == "Plan it." and second.system == "Write it."
    assert second.messages[0].text == writer["input"]
    assert second.model == "writer-model"


async def test_failed_run_names_the_step(client, workflow, fake_provider):
    fake_provider.enqueue(reply("plan"), ProviderStatusError(400, "prompt is too long"))
    run = await trigger(client, workflow)
    failed = await wait_for_run(client, run["id"])
    assert failed["status"] == "failed"
    assert failed["output"] is None
    assert (
        failed["error"] == "Step 2 (writer) failed: model provider returned 400: prompt is too long"
    )
    assert failed["total_steps"] == 2
    assert failed["finished_at"] is not None
    writer = failed["steps"][1]
    assert writer["error"] == "model provider returned 400: prompt is too long"
    assert writer["output"] is None


async def test_transient_failures_are_retried_then_fail_with_the_reason(
    client, workflow, fake_provider, settings
):
    attempts = settings.models.max_retries + 1
    fake_provider.enqueue(*[ProviderTimeout() for _ in range(attempts)])
    run = await trigger(client, workflow)
    failed = await wait_for_run(client, run["id"])
    assert failed["error"] == "Step 1 (planner) failed: model request timed out"
    assert failed["total_steps"] == 1
    assert len(fake_provider.requests) == attempts


async def test_list_runs_newest_first_without_steps(client, workflow):
    ids = [(await trigger(client, workflow, f"run {i}"))["id"] for i in range(3)]
    for run_id in ids:
        await wait_for_run(client, run_id)
    response = await client.get(f"/v1/workflows/{workflow['id']}/runs")
    listed = response.json()["data"]
    assert [r["id"] for r in listed] == ids[::-1]
    assert all(set(r) == RUN_KEYS for r in listed)


async def test_list_runs_caps_at_50(client, workflow, fake_provider):
    fake_provider.delay = 0
    for i in range(52):
        await trigger(client, workflow, f"run {i}")
    listed = (await client.get(f"/v1/workflows/{workflow['id']}/runs")).json()["data"]
    assert len(listed) == 50
    assert listed[0]["input"] == "run 51"


async def test_run_executes_the_crew_as_it_was_at_trigger_time(client, workflow, fake_provider):
    fake_provider.delay = 0.2
    run = await trigger(client, workflow)
    await client.patch(
        f"/v1/workflows/{workflow['id']}",
        json={"crew": [{"role": "solo", "systemPrompt": "Changed."}], "model": "fake/new"},
    )
    done = await wait_for_run(client, run["id"])
    assert [s["role"] for s in done["steps"]] == ["planner", "writer"]
    assert [r.system for r in fake_provider.requests] == ["Plan it.", "Write it."]


async def test_trigger_validation_and_order_of_checks(client, workflow, anonymous):
    path = f"/v1/workflows/{workflow['id']}/runs"
    assert (await client.post(path, json={})).json() == {"error": "Required"}
    assert (await client.post(path, json={"input": ""})).json() == {
        "error": "String must contain at least 1 character(s)"
    }
    assert (await client.post(path, json={"input": "x" * 16001})).json() == {
        "error": "String must contain at most 16000 character(s)"
    }
    assert (await client.post(path, json={"input": 42})).json() == {
        "error": "Expected string, received number"
    }
    # 401 before 404 before 400 before 409.
    response = await anonymous.post("/v1/workflows/missing/runs", json={})
    assert (response.status_code, response.json()) == (401, {"error": "Missing Bearer token"})
    response = await client.post("/v1/workflows/missing/runs", json={})
    assert (response.status_code, response.json()) == (404, {"error": "Not found"})
    await client.patch(f"/v1/workflows/{workflow['id']}", json={"status": "paused"})
    response = await client.post(path, json={})
    assert (response.status_code, response.json()) == (400, {"error": "Required"})
    response = await client.post(path, json={"input": "ok"})
    assert (response.status_code, response.json()) == (409, {"error": "Workflow is paused"})


async def test_runs_of_other_accounts_are_404(client, workflow, other_api_key):
    run = await trigger(client, workflow)
    headers = {"Authorization": f"Bearer {other_api_key}"}
    response = await client.get(f"/v1/runs/{run['id']}", headers=headers)
    assert (response.status_code, response.json()) == (404, {"error": "Not found"})
    response = await client.post(
        f"/v1/runs/{run['id']}/respond", json={"action": "input", "input": "x"}, headers=headers
    )
    assert response.status_code == 404


async def test_unknown_run_is_404(client):
    response = await client.get("/v1/runs/nope")
    assert (response.status_code, response.json()) == (404, {"error": "Not found"})


async def test_provider_without_credentials_fails_with_what_to_set(client):
    workflow = (
        await client.post("/v1/workflows", json={"name": "x", "model": "claude-sonnet-4-6"})
    ).json()["data"]
    run = await trigger(client, workflow)
    failed = await wait_for_run(client, run["id"])
    assert failed["error"] == (
        "Step 1 (planner) failed: no API key configured for provider anthropic: "
        "set ANTHROPIC_API_KEY"
    )


async def test_respond_to_a_run_that_is_not_paused_is_409(client, workflow):
    run = await trigger(client, workflow)
    await wait_for_run(client, run["id"])
    response = await client.post(
        f"/v1/runs/{run['id']}/respond", json={"action": "input", "input": "x"}
    )
    assert (response.status_code, response.json()) == (
        409,
        {"error": "Run is not waiting for input"},
    )
    response = await client.post(f"/v1/runs/{run['id']}/respond", json={"action": "maybe"})
    assert response.status_code == 400
    assert response.json() == {
        "error": "Invalid enum value. Expected 'input' | 'approve' | 'reject', received 'maybe'"
    }
