"""The durable event log of a run, through `GET /v1/runs/{id}/events`, on SQLite and
PostgreSQL: the exact event types in order, gapless ids, each event's data, paging."""

from __future__ import annotations

import asyncio

import pytest

from loopllama.providers.base import ProviderStatusError
from loopllama.providers.fake import reply, tool_call
from tests.events.support import assert_gapless, events_of, types
from tests.helpers import wait_for_run
from tests.hitl.support import make_workflow, respond, settle, start

CREW = [
    {"role": "planner", "systemPrompt": "Plan it."},
    {"role": "writer", "systemPrompt": "Write it."},
]


async def _workflow(client, crew=CREW) -> dict:
    body = {"name": "events", "model": "fake/test", "crew": crew}
    response = await client.post("/v1/workflows", json=body)
    assert response.status_code == 201, response.text
    return response.json()["data"]


async def test_a_plain_run_logs_each_state_change_once(client, fake_provider):
    fake_provider.enqueue(reply("the plan", 11, 3), reply("the text", 13, 5))
    workflow = await _workflow(client)
    run_id = await start(client, workflow, "a brief")
    run = await wait_for_run(client, run_id)
    events = await events_of(client, run_id)

    assert types(events) == [
        "run.queued",
        "run.started",
        "step.started",
        "step.completed",
        "step.started",
        "step.completed",
        "run.completed",
    ]
    assert_gapless(events)
    assert {e["run_id"] for e in events} == {run_id}
    assert events[0]["data"]["status"] == "queued"
    assert events[1]["data"]["status"] == "running"
    planner, writer = run["steps"]
    assert events[2]["data"]["id"] == planner["id"] and events[2]["data"]["output"] is None
    assert events[3]["data"] == planner
    assert events[5]["data"] == writer
    final = {key: value for key, value in run.items() if key != "steps"}
    assert events[6]["data"] == final
    assert events[6]["data"]["tokens_in"] == 24


async def test_a_failed_run_logs_the_failed_step(client, fake_provider):
    fake_provider.enqueue(ProviderStatusError(400, "bad request"))
    workflow = await _workflow(client)
    run_id = await start(client, workflow)
    run = await wait_for_run(client, run_id)
    events = await events_of(client, run_id)

    assert run["status"] == "failed"
    assert types(events) == [
        "run.queued",
        "run.started",
        "step.started",
        "step.failed",
        "run.failed",
    ]
    assert_gapless(events)
    assert events[3]["data"]["error"] == run["steps"][0]["error"]
    assert events[4]["data"]["error"] == run["error"]


async def test_tool_calls_and_two_pauses_answered(client, fake_provider):
    # ask_human twice, answered each time; then the agent answers.
    fake_provider.enqueue(
        tool_call("ask_human", {"question": "Which tone?"}, "call_1"),
        tool_call("ask_human", {"question": "How long?"}, "call_2"),
        reply("done"),
    )
    workflow = await make_workflow(
        client,
        crew=[{"role": "assistant", "systemPrompt": "Help."}],
        hitl={"ask_questions": True},
    )
    run_id = await start(client, workflow)
    for answer in ("Friendly", "Short"):
        paused = await settle(client, run_id)
        assert paused["status"] == "waiting_input"
        assert (await respond(client, run_id, action="input", input=answer)).status_code == 202
    done = await settle(client, run_id)
    assert done["status"] == "completed", done
    events = await events_of(client, run_id)

    pause = ["tool_call.updated", "run.waiting_input", "tool_call.updated", "run.resumed"]
    assert types(events) == [
        "run.queued", "run.started", "step.started",
        *pause, "run.started",
        *pause, "run.started",
        "step.completed", "run.completed",
    ]  # fmt: skip
    assert_gapless(events)
    asked, waiting, answered, resumed = events[3:7]
    assert asked["data"]["tool_call"]["status"] == "awaiting"
    assert asked["data"]["order"] == 0
    assert asked["data"]["step_id"] == done["steps"][0]["id"]
    assert waiting["data"]["pending"]["prompt"] == "Which tone?"
    assert (
        answered["data"]["tool_call"] | {"status": "answered", "result": "Friendly"}
        == (answered["data"]["tool_call"])
    )
    assert resumed["data"]["action"] == "input"
    assert resumed["data"]["run"]["status"] == "running"
    assert [c["status"] for c in events[-2]["data"]["tool_calls"]] == ["answered", "answered"]


async def test_a_tool_that_runs_logs_started_and_finished(client, fake_provider, http_server):
    tool = {
        "name": "crm_upsert",
        "description": "Save a contact",
        "input_schema": {"type": "object", "properties": {"email": {"type": "string"}}},
        "url": http_server.url("/echo"),
    }
    fake_provider.enqueue(tool_call("crm_upsert", {"email": "a@b.c"}), reply("saved"))
    workflow = await make_workflow(
        client,
        crew=[{"role": "crm", "systemPrompt": "Keep the CRM.", "tools": ["crm_upsert"]}],
        tools=[tool],
    )
    run_id = await start(client, workflow)
    done = await settle(client, run_id)
    assert done["status"] == "completed", done
    events = await events_of(client, run_id)

    assert types(events) == [
        "run.queued", "run.started", "step.started",
        "tool_call.updated", "tool_call.updated",
        "step.completed", "run.completed",
    ]  # fmt: skip
    assert_gapless(events)
    assert [e["data"]["tool_call"]["status"] for e in events[3:5]] == ["started", "finished"]
    assert events[4]["data"]["tool_call"] == done["steps"][0]["tool_calls"][0]


async def test_two_racing_responds_leave_one_resume_in_the_log(client, fake_provider):
    fake_provider.enqueue(tool_call("ask_human", {"question": "Go?"}), reply("ok"))
    workflow = await make_workflow(
        client, crew=[{"role": "a", "systemPrompt": "Help."}], hitl={"ask_questions": True}
    )
    run_id = await start(client, workflow)
    await settle(client, run_id)
    answers = await asyncio.gather(
        *(respond(client, run_id, action="input", input=f"answer {i}") for i in range(4))
    )
    assert sorted(r.status_code for r in answers) == [202, 409, 409, 409]
    await wait_for_run(client, run_id, ("completed",))
    events = await events_of(client, run_id)
    assert types(events).count("run.resumed") == 1
    assert_gapless(events)


async def test_paging_after_and_limit(client, fake_provider):
    workflow = await _workflow(client)
    run_id = await start(client, workflow)
    await wait_for_run(client, run_id)

    first = (await client.get(f"/v1/runs/{run_id}/events", params={"limit": 3})).json()
    assert [e["id"] for e in first["data"]] == [1, 2, 3] and first["has_more"] is True
    rest = (await client.get(f"/v1/runs/{run_id}/events", params={"after": 3})).json()
    assert [e["id"] for e in rest["data"]] == [4, 5, 6, 7] and rest["has_more"] is False
    last = (await client.get(f"/v1/runs/{run_id}/events?after=6&limit=1")).json()
    assert [e["id"] for e in last["data"]] == [7] and last["has_more"] is False
    assert (await client.get(f"/v1/runs/{run_id}/events?after=7")).json() == {
        "data": [],
        "has_more": False,
    }


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("limit=0", "Invalid 'limit': Number must be greater than or equal to 1"),
        ("limit=1001", "Invalid 'limit': Number must be less than or equal to 1000"),
        ("limit=ten", "Invalid 'limit': Expected number, received string"),
        ("after=-1", "Invalid 'after': Number must be greater than or equal to 0"),
        ("after=1.5", "Invalid 'after': Expected integer, received float"),
    ],
)
async def test_bad_query_values_are_400(client, query, message):
    workflow = await _workflow(client)
    run_id = await start(client, workflow)
    response = await client.get(f"/v1/runs/{run_id}/events?{query}")
    assert response.status_code == 400
    assert response.json() == {"error": message}


async def test_another_accounts_run_is_404(client, app, other_api_key):
    import httpx

    workflow = await _workflow(client)
    run_id = await start(client, workflow)
    transport = httpx.ASGITransport(app=app)
    headers = {"Authorization": f"Bearer {other_api_key}"}
    async with httpx.AsyncClient(
        transport=transport, base_url="http://t", headers=headers
    ) as other:
        for path in ("events", "stream"):
            response = await other.get(f"/v1/runs/{run_id}/{path}")
            assert response.status_code == 404
            assert response.json() == {"error": "Not found"}
    response = await client.get("/v1/runs/nope/events")
    assert response.status_code == 404
