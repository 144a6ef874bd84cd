"""Cancel in every state, and against the transitions it races (part 7), on both databases.

These tests use the in-process scripted provider; tests/control/test_cancel_in_flight.py closes
real HTTP requests to the fake provider server, in one process and across workers."""

from __future__ import annotations

import asyncio

from loopllama.providers.fake import reply, tool_call
from tests.control.support import make_workflow, settle, trigger

ASK = {"ask_questions": True}
FINISHED = (409, {"error": "Run has already finished"})


def blocker():
    """A scripted model call that waits until released; `started` is set when it began."""
    started, release = asyncio.Event(), asyncio.Event()

    async def call(_request):
        started.set()
        await release.wait()
        return reply("late answer")

    return call, started, release


async def test_cancel_a_queued_run(client, app, fake_provider):
    workflow = await make_workflow(client)
    # The engine is stopped first, so the run stays queued.
    await app.state.services.dispatcher.stop()
    run = await trigger(client, workflow["id"])
    response = await client.post(f"/v1/runs/{run['id']}/cancel")
    assert response.status_code == 202
    data = response.json()["data"]
    assert data["status"] == "cancelled"
    assert data["finished_at"] is not None and data["output"] is None and data["error"] is None
    await app.state.services.dispatcher.start()
    await asyncio.sleep(0.2)
    again = (await client.get(f"/v1/runs/{run['id']}")).json()["data"]
    assert again["status"] == "cancelled" and again["steps"] == []
    assert fake_provider.requests == []


async def test_cancel_a_running_run_stops_it_at_once(client, fake_provider):
    call, started, release = blocker()
    fake_provider.enqueue(reply("research"), call)
    workflow = await make_workflow(client)
    run = await trigger(client, workflow["id"])
    await asyncio.wait_for(started.wait(), 10)
    response = await client.post(f"/v1/runs/{run['id']}/cancel")
    assert (response.status_code, response.json()["data"]["status"]) == (202, "cancelled")
    release.set()  # a late answer of the aborted call must change nothing
    await asyncio.sleep(0.2)
    done = (await client.get(f"/v1/runs/{run['id']}")).json()["data"]
    assert done["status"] == "cancelled" and done["output"] is None
    first, second = done["steps"]
    assert first["output"] == "research" and first["error"] is None
    assert second["error"] == "cancelled" and second["finished_at"] is not None
    assert len(fake_provider.requests) == 2  # no third call: the writer never started


async def test_cancel_a_paused_run_drops_its_pending_request(client, fake_provider):
    fake_provider.enqueue(tool_call("ask_human", {"question": "Tone?"}, "q1"))
    workflow = await make_workflow(
        client, crew=[{"role": "writer", "systemPrompt": "Write."}], human_in_the_loop=ASK
    )
    run = await trigger(client, workflow["id"])
    assert (await settle(client, run["id"]))["status"] == "waiting_input"
    response = await client.post(f"/v1/runs/{run['id']}/cancel")
    assert response.status_code == 202
    data = response.json()["data"]
    assert (data["status"], data["pending"]) == ("cancelled", None)
    done = (await client.get(f"/v1/runs/{run['id']}")).json()["data"]
    (call,) = done["steps"][0]["tool_calls"]
    assert call["status"] == "dropped"
    response = await client.post(
        f"/v1/runs/{run['id']}/respond", json={"action": "input", "input": "x"}
    )
    assert (response.status_code, response.json()) == (
        409,
        {"error": "Run is not waiting for input"},
    )


async def test_cancel_a_finished_run_is_a_409(client, fake_provider):
    from loopllama.providers.base import ProviderStatusError

    workflow = await make_workflow(client, crew=[{"role": "w", "systemPrompt": "W."}])
    completed = await trigger(client, workflow["id"])
    fake_provider.enqueue(reply("done"))
    assert (await settle(client, completed["id"]))["status"] == "completed"
    fake_provider.enqueue(ProviderStatusError(400, "no"))
    failed = await trigger(client, workflow["id"])
    assert (await settle(client, failed["id"]))["status"] == "failed"
    for run in (completed, failed):
        before = (await client.get(f"/v1/runs/{run['id']}")).json()["data"]
        response = await client.post(f"/v1/runs/{run['id']}/cancel")
        assert (response.status_code, response.json()) == FINISHED
        assert (await client.get(f"/v1/runs/{run['id']}")).json()["data"] == before
    response = await client.post("/v1/runs/nope/cancel")
    assert (response.status_code, response.json()) == (404, {"error": "Not found"})


async def test_cancel_racing_respond(client, fake_provider):
    workflow = await make_workflow(
        client, crew=[{"role": "writer", "systemPrompt": "Write."}], human_in_the_loop=ASK
    )
    for _ in range(5):
        fake_provider.enqueue(tool_call("ask_human", {"question": "Tone?"}, "q1"), reply("ok"))
        run = await trigger(client, workflow["id"])
        assert (await settle(client, run["id"]))["status"] == "waiting_input"
        cancel, answer = await asyncio.gather(
            client.post(f"/v1/runs/{run['id']}/cancel"),
            client.post(f"/v1/runs/{run['id']}/respond", json={"action": "input", "input": "x"}),
        )
        final = await settle(client, run["id"], statuses=("completed", "cancelled"))
        # Cancel first: the respond finds the run no longer waiting. Respond first: the cancel
        # then stops a running run (or, if the run completed meanwhile, is the one refused).
        if answer.status_code == 409:
            assert answer.json() == {"error": "Run is not waiting for input"}
            assert (cancel.status_code, final["status"]) == (202, "cancelled")
        elif cancel.status_code == 409:
            assert cancel.json() == FINISHED[1]
            assert final["status"] == "completed"
        else:
            assert (cancel.status_code, answer.status_code) == (202, 202)
            assert final["status"] == "cancelled"
        fake_provider.script.clear()


async def test_cancel_racing_completion_exactly_one_wins(client, fake_provider):
    workflow = await make_workflow(client, crew=[{"role": "w", "systemPrompt": "W."}])
    for attempt in range(12):
        run = await trigger(client, workflow["id"])
        # Let the run get somewhere between queued and completed before cancelling.
        await asyncio.sleep(0.002 * (attempt % 4))
        response = await client.post(f"/v1/runs/{run['id']}/cancel")
        final = await settle(client, run["id"], statuses=("completed", "cancelled"))
        if response.status_code == 202:
            assert final["status"] == "cancelled" and final["output"] is None
        else:
            assert (response.status_code, response.json()) == FINISHED
            assert final["status"] == "completed"
        await asyncio.sleep(0.05)  # a loser's late write would show up here
        assert (await client.get(f"/v1/runs/{run['id']}")).json()["data"]["status"] == final[
            "status"
        ]
