"""A cancel or a time limit closes the model request in flight: the fake provider server, on
loopback, sees the real SDK's connection closed. In one process on SQLite and PostgreSQL, and
on PostgreSQL with the run held by a separate worker process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import httpx
import pytest

from loopllama.settings import EngineSettings
from tests.control.support import settle
from tests.fakes.provider_server import hang, text, tool_call
from tests.helpers import app_client, with_fake_providers

HANG_TIMEOUT = 10.0  # generous: the close normally arrives within milliseconds
# The server waits in a thread: the app runs on this test's event loop.


@pytest.fixture(params=["httpx", "aiohttp"])
async def http(request, settings, provider_server, api_key) -> AsyncIterator[httpx.AsyncClient]:
    """The app, its Anthropic SDK on either HTTP client: both must close the aborted call."""
    configured = with_fake_providers(settings, provider_server, http_transport=request.param)
    async with app_client(configured, api_key) as client:
        yield client


async def workflow(http, **fields) -> dict:
    body = {
        "name": "hangs",
        "model": "claude-sonnet-4-6",
        "crew": [
            {"role": "planner", "systemPrompt": "Plan."},
            {"role": "writer", "systemPrompt": "Write."},
        ],
        **fields,
    }
    response = await http.post("/v1/workflows", json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def test_cancel_closes_the_hanging_model_request(http, provider_server):
    provider_server.enqueue(text("the plan"), hang(60))
    flow = await workflow(http)
    run = (await http.post(f"/v1/workflows/{flow['id']}/runs", json={"input": "go"})).json()
    run_id = run["data"]["id"]
    await asyncio.to_thread(provider_server.wait_for_requests, 2, HANG_TIMEOUT)
    response = await http.post(f"/v1/runs/{run_id}/cancel")
    assert response.status_code == 202
    assert response.json()["data"]["status"] == "cancelled"
    (closed,) = await asyncio.to_thread(provider_server.wait_for_disconnects, 1, HANG_TIMEOUT)
    assert closed.request.system == "Write."
    done = await settle(http, run_id)
    assert done["status"] == "cancelled"
    assert [s["error"] for s in done["steps"]] == [None, "cancelled"]
    assert len(provider_server.requests) == 2  # not retried, nothing after it


async def test_a_time_limit_aborts_a_hanging_model_call(http, provider_server):
    provider_server.enqueue(text("the plan"), hang(60))
    flow = await workflow(http, max_run_seconds=1)
    run_id = (await http.post(f"/v1/workflows/{flow['id']}/runs", json={"input": "go"})).json()[
        "data"
    ]["id"]
    await asyncio.to_thread(provider_server.wait_for_disconnects, 1, HANG_TIMEOUT)
    done = await settle(http, run_id)
    assert done["status"] == "failed"
    assert done["error"] == "Step 2 (writer) failed: run exceeded its time limit of 1 seconds"
    assert done["steps"][1]["error"] == "run exceeded its time limit of 1 seconds"
    assert done["steps"][0]["output"] == "the plan"


async def test_the_server_wide_time_limit_applies_without_a_workflow_limit(
    settings, provider_server, api_key
):
    configured = with_fake_providers(settings, provider_server).model_copy(
        update={"engine": EngineSettings(max_run_seconds=1)}
    )
    async with app_client(configured, api_key) as http:
        provider_server.enqueue(hang(60))
        flow = await workflow(http, crew=[{"role": "solo", "systemPrompt": "S."}])
        run_id = (await http.post(f"/v1/workflows/{flow['id']}/runs", json={"input": "go"})).json()[
            "data"
        ]["id"]
        await asyncio.to_thread(provider_server.wait_for_disconnects, 1, HANG_TIMEOUT)
        done = await settle(http, run_id)
    assert done["error"] == "Step 1 (solo) failed: run exceeded its time limit of 1 seconds"


async def test_time_waiting_for_a_human_does_not_count(http, provider_server):
    provider_server.enqueue(tool_call("ask_human", {"question": "Tone?"}), text("done"))
    flow = await workflow(
        http,
        # Generous: the running time before and after the pause must stay under it even on a
        # loaded machine; the pause alone outlasts it.
        max_run_seconds=4,
        crew=[{"role": "solo", "systemPrompt": "S."}],
        human_in_the_loop={"ask_questions": True},
    )
    run_id = (await http.post(f"/v1/workflows/{flow['id']}/runs", json={"input": "go"})).json()[
        "data"
    ]["id"]
    assert (await settle(http, run_id))["status"] == "waiting_input"
    await asyncio.sleep(5)  # longer than the limit, but paused
    response = await http.post(
        f"/v1/runs/{run_id}/respond", json={"action": "input", "input": "warm"}
    )
    assert response.status_code == 202
    done = await settle(http, run_id, statuses=("completed", "failed"))
    assert (done["status"], done["output"]) == ("completed", "done")
