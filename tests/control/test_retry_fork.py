"""Retry and fork make new runs that reuse the source's completed steps (part 7)."""

from __future__ import annotations

from loopllama.providers.base import ProviderStatusError
from loopllama.providers.fake import reply, tool_call
from tests.control.support import make_workflow, settle, trigger


async def test_retry_after_a_failure_in_step_2_of_3(client, fake_provider):
    fake_provider.enqueue(
        reply("research", 100, 10), ProviderStatusError(400, "prompt is too long")
    )
    workflow = await make_workflow(client)
    source = await trigger(client, workflow["id"], "the topic")
    failed = await settle(client, source["id"])
    assert failed["status"] == "failed"
    fake_provider.requests.clear()
    fake_provider.enqueue(reply("analysis", 7, 3), reply("the article", 9, 4))

    response = await client.post(f"/v1/runs/{source['id']}/retry")
    assert response.status_code == 202, response.text
    retry = response.json()["data"]
    assert retry["id"] != source["id"]
    assert retry["status"] == "queued"
    assert retry["forked_from"] == {"run_id": source["id"], "from_step": 1}
    assert retry["workflow_version"] == failed["workflow_version"] == 1
    assert retry["input"] == "the topic"
    done = await settle(client, retry["id"])
    assert (done["status"], done["output"]) == ("completed", "the article")
    # Step 1 was not called again: two model calls, for the analyst and the writer.
    assert [r.system for r in fake_provider.requests] == ["Analyse.", "Write."]
    first, second, third = done["steps"]
    assert (first["forked"], first["output"], first["tokens_in"]) == (True, "research", 100)
    assert not second["forked"] and not third["forked"]
    assert done["tokens_in"] == 100 + 7 + 9
    # The source never changes.
    again = (await client.get(f"/v1/runs/{source['id']}")).json()["data"]
    assert again == failed


async def test_retry_does_not_repeat_a_finished_tool_call_of_the_failed_step(
    client, fake_provider, settings
):
    # The analyst called a tool, then its next model call failed: the retry continues the
    # step with the tool's recorded result instead of calling the tool again.
    fake_provider.enqueue(
        reply("research"),
        tool_call("http_request", {"method": "GET", "url": "http://10.0.0.1/"}, "c1"),
        ProviderStatusError(400, "bad request"),
    )
    crew = [
        {"role": "researcher", "systemPrompt": "Research."},
        {"role": "analyst", "systemPrompt": "Analyse.", "tools": ["http_request"]},
    ]
    workflow = await make_workflow(client, crew=crew)
    source = await trigger(client, workflow["id"])
    failed = await settle(client, source["id"])
    assert failed["status"] == "failed"
    (call,) = failed["steps"][1]["tool_calls"]
    assert call["status"] == "finished"
    fake_provider.requests.clear()
    fake_provider.enqueue(reply("analysis"))
    retry = (await client.post(f"/v1/runs/{source['id']}/retry")).json()["data"]
    done = await settle(client, retry["id"])
    assert (done["status"], done["output"]) == ("completed", "analysis")
    (request,) = fake_provider.requests  # one model call: the tool was not run again
    results = [p for p in request.messages[-1].parts if p.type == "tool_result"]
    assert [r.content for r in results] == [call["result"]]
    (copied,) = done["steps"][1]["tool_calls"]
    assert copied["result"] == call["result"]


async def test_retry_of_a_cancelled_run_and_of_other_statuses(client, app, fake_provider):
    workflow = await make_workflow(client)
    completed = await trigger(client, workflow["id"])
    await settle(client, completed["id"])
    response = await client.post(f"/v1/runs/{completed['id']}/retry")
    assert (response.status_code, response.json()) == (
        409,
        {"error": "Run is not failed or cancelled"},
    )
    await app.state.services.dispatcher.stop()
    queued = await trigger(client, workflow["id"])
    response = await client.post(f"/v1/runs/{queued['id']}/retry")
    assert response.status_code == 409
    assert (await client.post(f"/v1/runs/{queued['id']}/cancel")).status_code == 202
    await app.state.services.dispatcher.start()
    retry = (await client.post(f"/v1/runs/{queued['id']}/retry")).json()["data"]
    assert retry["forked_from"] == {"run_id": queued["id"], "from_step": 0}
    assert (await settle(client, retry["id"]))["status"] == "completed"
    assert (await client.post("/v1/runs/nope/retry")).status_code == 404


async def test_fork_from_a_step_with_new_input(client, fake_provider):
    workflow = await make_workflow(client)
    source = await trigger(client, workflow["id"], "first input")
    done = await settle(client, source["id"])
    assert done["status"] == "completed"
    fake_provider.requests.clear()
    response = await client.post(
        f"/v1/runs/{source['id']}/fork", json={"from_step": 2, "input": "second input"}
    )
    assert response.status_code == 202, response.text
    fork = response.json()["data"]
    assert fork["forked_from"] == {"run_id": source["id"], "from_step": 2}
    assert fork["input"] == "second input"
    assert fork["total_steps"] == 2
    forked = await settle(client, fork["id"])
    assert forked["status"] == "completed"
    assert [s["forked"] for s in forked["steps"]] == [True, True, False]
    assert [s["output"] for s in forked["steps"][:2]] == [s["output"] for s in done["steps"][:2]]
    (request,) = fake_provider.requests  # only the writer was called
    assert request.system == "Write."
    assert "second input" in request.messages[0].text


async def test_fork_with_use_current_workflow(client, fake_provider):
    workflow = await make_workflow(client)
    source = await trigger(client, workflow["id"])
    await settle(client, source["id"])
    new_crew = [*workflow["crew"][:2], {"role": "writer", "systemPrompt": "Write it better."}]
    patched = await client.patch(f"/v1/workflows/{workflow['id']}", json={"crew": new_crew})
    assert patched.json()["data"]["version"] == 2
    fake_provider.requests.clear()

    snapshot = (await client.post(f"/v1/runs/{source['id']}/fork", json={"from_step": 2})).json()
    await settle(client, snapshot["data"]["id"])
    assert snapshot["data"]["workflow_version"] == 1
    current = (
        await client.post(
            f"/v1/runs/{source['id']}/fork", json={"from_step": 2, "use_current_workflow": True}
        )
    ).json()
    assert current["data"]["workflow_version"] == 2
    await settle(client, current["data"]["id"])
    assert [r.system for r in fake_provider.requests] == ["Write.", "Write it better."]


async def test_fork_validation(client, fake_provider):
    fake_provider.enqueue(reply("research"), ProviderStatusError(400, "no"))
    workflow = await make_workflow(client)
    source = await trigger(client, workflow["id"])
    await settle(client, source["id"])
    path = f"/v1/runs/{source['id']}/fork"
    for body, message in (
        ({}, "Required"),
        ({"from_step": -1}, "Number must be greater than or equal to 0"),
        ({"from_step": "1"}, "Expected number, received string"),
        ({"from_step": 3}, "from_step must be less than 3, the number of agents in the crew"),
        ({"from_step": 0, "input": ""}, "String must contain at least 1 character(s)"),
    ):
        response = await client.post(path, json=body)
        assert (response.status_code, response.json()) == (400, {"error": message}), body
    response = await client.post(path, json={"from_step": 2})
    assert response.status_code == 400
    assert response.json()["error"].startswith("from_step 2: step 1 of the source run did not")
    # A failed source may be forked from a step it completed.
    assert (await client.post(path, json={"from_step": 1})).status_code == 202
    assert (await client.post("/v1/runs/nope/fork", json={"from_step": 0})).status_code == 404


async def test_retry_and_fork_of_a_paused_workflow_are_refused(client, fake_provider):
    fake_provider.enqueue(ProviderStatusError(400, "no"))
    workflow = await make_workflow(client)
    source = await trigger(client, workflow["id"])
    await settle(client, source["id"])
    await client.patch(f"/v1/workflows/{workflow['id']}", json={"status": "paused"})
    paused = (409, {"error": "Workflow is paused"})
    response = await client.post(f"/v1/runs/{source['id']}/retry")
    assert (response.status_code, response.json()) == paused
    response = await client.post(f"/v1/runs/{source['id']}/fork", json={"from_step": 0})
    assert (response.status_code, response.json()) == paused
