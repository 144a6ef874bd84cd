"""Runs that pause for answers and approvals, answered through `POST /v1/runs/{id}/respond`."""

from __future__ import annotations

import asyncio

from loopllama.providers.fake import reply, tool_call
from tests.hitl.support import make_workflow, respond, settle, start, tool_results

EMAIL = {"to": "ceo@example.com", "subject": "Q3 numbers", "body": "Revenue is up."}
ASK = {"ask_questions": True}
APPROVE_EMAIL = {"approve_tools": ["send_email"]}


async def test_question_pauses_and_the_answer_reaches_the_agent(client, fake_provider):
    fake_provider.enqueue(
        tool_call("ask_human", {"question": "Which tone?"}, "q1", text="Let me ask."),
        reply("Done in a friendly tone.", 30, 7),
    )
    workflow = await make_workflow(
        client, crew=[{"role": "writer", "systemPrompt": "Write."}], hitl=ASK
    )
    run_id = await start(client, workflow)
    paused = await settle(client, run_id)
    assert paused["status"] == "waiting_input"
    assert paused["pending"] == {"kind": "input", "prompt": "Which tone?"}
    assert paused["output"] is None and paused["finished_at"] is None
    assert paused["steps"][0]["finished_at"] is None

    # The model was offered ask_human.
    assert [t.name for t in fake_provider.requests[0].tools] == ["ask_human"]

    response = await respond(client, run_id, action="input", input="Friendly, for SMB owners.")
    assert response.status_code == 202
    assert response.json() == {"data": {"id": run_id, "status": "running"}}

    done = await settle(client, run_id)
    assert done["status"] == "completed"
    assert done["pending"] is None
    assert done["output"] == "Done in a friendly tone."
    (result,) = tool_results(fake_provider.requests[-1])
    assert (result.call_id, result.content, result.is_error) == (
        "q1",
        "Friendly, for SMB owners.",
        False,
    )
    # Tokens of both model calls add up in the step.
    assert done["steps"][0]["tokens_in"] == 5 + 30
    (call,) = done["steps"][0]["tool_calls"]
    assert (call["name"], call["status"], call["result"]) == (
        "ask_human",
        "answered",
        "Friendly, for SMB owners.",
    )


async def test_approval_runs_the_tool_once_and_hands_back_its_result(
    client, fake_provider, mailbox
):
    fake_provider.enqueue(tool_call("send_email", EMAIL, "e1"), reply("Email sent."))
    workflow = await make_workflow(client, hitl=APPROVE_EMAIL)
    run_id = await start(client, workflow)
    paused = await settle(client, run_id)
    assert paused["status"] == "waiting_input"
    pending = paused["pending"]
    assert pending["kind"] == "approval"
    assert pending["tool"] == "send_email"
    assert pending["tool_input"] == EMAIL
    assert "ceo@example.com" in pending["prompt"] and "\n" not in pending["prompt"]
    assert mailbox.mails == []  # nothing happens before the approval

    assert (await respond(client, run_id, action="approve")).status_code == 202
    done = await settle(client, run_id)
    assert done["status"] == "completed"
    assert len(mailbox.mails) == 1
    mail = mailbox.mails[0]
    assert mail.rcpt_tos == ["ceo@example.com"]
    assert mail.message["Subject"] == "Q3 numbers"
    (result,) = tool_results(fake_provider.requests[-1])
    assert "ceo@example.com" in result.content and not result.is_error
    (call,) = done["steps"][0]["tool_calls"]
    assert call["status"] == "finished"


async def test_reject_never_runs_the_tool_and_tells_the_agent_why(client, fake_provider, mailbox):
    fake_provider.enqueue(tool_call("send_email", EMAIL, "e1"), reply("Understood."))
    workflow = await make_workflow(client, hitl=APPROVE_EMAIL)
    run_id = await start(client, workflow)
    await settle(client, run_id)
    response = await respond(
        client, run_id, action="reject", reason="Do not email external addresses."
    )
    assert response.status_code == 202
    done = await settle(client, run_id)
    assert done["status"] == "completed"
    assert mailbox.mails == []
    (result,) = tool_results(fake_provider.requests[-1])
    assert result.is_error
    assert "declined" in result.content
    assert "Do not email external addresses." in result.content


async def test_ungated_tools_run_without_a_pause(client, fake_provider, mailbox):
    fake_provider.enqueue(tool_call("send_email", EMAIL, "e1"), reply("Sent."))
    workflow = await make_workflow(client)  # no human_in_the_loop
    run_id = await start(client, workflow)
    done = await settle(client, run_id)
    assert done["status"] == "completed"
    assert len(mailbox.mails) == 1


async def test_two_pauses_in_one_step(client, fake_provider, mailbox):
    fake_provider.enqueue(
        tool_call("ask_human", {"question": "Who to email?"}, "q1"),
        tool_call("send_email", EMAIL, "e1"),
        reply("All done."),
    )
    workflow = await make_workflow(client, hitl={**ASK, **APPROVE_EMAIL})
    run_id = await start(client, workflow)
    first = await settle(client, run_id)
    assert first["pending"]["kind"] == "input"
    assert (await respond(client, run_id, action="approve")).status_code == 400
    await respond(client, run_id, action="input", input="The CEO.")
    second = await settle(client, run_id)
    assert second["status"] == "waiting_input"
    assert second["pending"]["kind"] == "approval"
    await respond(client, run_id, action="approve")
    done = await settle(client, run_id)
    assert done["status"] == "completed"
    assert len(mailbox.mails) == 1
    assert [c["name"] for c in done["steps"][0]["tool_calls"]] == ["ask_human", "send_email"]


async def test_pauses_in_two_different_steps(client, fake_provider):
    fake_provider.enqueue(
        tool_call("ask_human", {"question": "Scope?"}, "a"),
        reply("plan"),
        tool_call("ask_human", {"question": "Length?"}, "b"),
        reply("draft"),
    )
    workflow = await make_workflow(
        client,
        crew=[
            {"role": "planner", "systemPrompt": "Plan."},
            {"role": "writer", "systemPrompt": "W."},
        ],
        hitl=ASK,
    )
    run_id = await start(client, workflow)
    assert (await settle(client, run_id))["pending"]["prompt"] == "Scope?"
    await respond(client, run_id, action="input", input="Small.")
    paused = await settle(client, run_id)
    assert paused["pending"]["prompt"] == "Length?"
    assert paused["total_steps"] == 2
    assert paused["steps"][0]["output"] == "plan"
    await respond(client, run_id, action="input", input="Short.")
    done = await settle(client, run_id)
    assert done["status"] == "completed"
    assert done["output"] == "draft"
    assert "--- planner ---\nplan" in done["steps"][1]["input"]


async def test_action_must_match_the_pending_kind(client, fake_provider):
    fake_provider.enqueue(tool_call("send_email", EMAIL, "e1"))
    workflow = await make_workflow(client, hitl=APPROVE_EMAIL)
    run_id = await start(client, workflow)
    await settle(client, run_id)
    response = await respond(client, run_id, action="input", input="hello")
    assert response.status_code == 400
    message = response.json()["error"]
    assert "'input'" in message and "'approval'" in message
    response = await respond(client, run_id, action="input")
    assert (response.status_code, response.json()) == (400, {"error": "Required"})
    # Still paused after the refused answers.
    assert (await settle(client, run_id))["status"] == "waiting_input"


async def test_racing_responds_exactly_one_wins_and_the_tool_runs_once(
    client, fake_provider, mailbox
):
    fake_provider.enqueue(tool_call("send_email", EMAIL, "e1"), reply("ok"))
    workflow = await make_workflow(client, hitl=APPROVE_EMAIL)
    run_id = await start(client, workflow)
    await settle(client, run_id)
    responses = await asyncio.gather(*[respond(client, run_id, action="approve") for _ in range(5)])
    codes = sorted(r.status_code for r in responses)
    assert codes == [202, 409, 409, 409, 409]
    assert all(
        r.json() == {"error": "Run is not waiting for input"}
        for r in responses
        if r.status_code == 409
    )
    done = await settle(client, run_id)
    assert done["status"] == "completed"
    assert len(mailbox.mails) == 1


async def test_approve_and_reject_racing(client, fake_provider, mailbox):
    fake_provider.enqueue(tool_call("send_email", EMAIL, "e1"), reply("ok"))
    workflow = await make_workflow(client, hitl=APPROVE_EMAIL)
    run_id = await start(client, workflow)
    await settle(client, run_id)
    approve, reject = await asyncio.gather(
        respond(client, run_id, action="approve"), respond(client, run_id, action="reject")
    )
    assert sorted([approve.status_code, reject.status_code]) == [202, 409]
    await settle(client, run_id)
    assert len(mailbox.mails) == (1 if approve.status_code == 202 else 0)


async def test_a_bound_on_model_calls_fails_the_step(client, fake_provider, settings):
    limit = settings.models.max_calls_per_step
    fake_provider.enqueue(*[tool_call("send_email", {"to": "x"}, f"c{i}") for i in range(limit)])
    workflow = await make_workflow(client)
    run_id = await start(client, workflow)
    failed = await settle(client, run_id)
    assert failed["status"] == "failed"
    assert failed["error"].startswith(
        f"Step 1 (assistant) failed: the agent made {limit} model calls"
    )
    assert "LOOPLLAMA_MAX_MODEL_CALLS_PER_STEP" in failed["error"]


async def test_unknown_tool_call_is_an_error_result_not_a_crash(client, fake_provider):
    fake_provider.enqueue(tool_call("drop_database", {}, "x"), reply("I could not."))
    workflow = await make_workflow(client)
    run_id = await start(client, workflow)
    done = await settle(client, run_id)
    assert done["status"] == "completed"
    (result,) = tool_results(fake_provider.requests[-1])
    assert result.is_error and "drop_database" in result.content


async def test_pause_timeout_rejects(client, fake_provider, mailbox):
    fake_provider.enqueue(tool_call("send_email", EMAIL, "e1"), reply("Fine, not sent."))
    workflow = await make_workflow(
        client, hitl={**APPROVE_EMAIL, "timeout_seconds": 1, "on_timeout": "reject"}
    )
    run_id = await start(client, workflow)
    paused = await settle(client, run_id)
    assert paused["pending"]["expires_at"]
    done = await settle(client, run_id, timeout=10)  # waits out the pause too
    while done["status"] == "waiting_input":
        await asyncio.sleep(0.1)
        done = await settle(client, run_id)
    assert done["status"] == "completed"
    assert mailbox.mails == []
    (call,) = done["steps"][0]["tool_calls"]
    assert call["status"] == "rejected"
    assert "no human response within 1 seconds" in call["result"]
    (result,) = tool_results(fake_provider.requests[-1])
    assert result.is_error


async def test_pause_timeout_fails_the_run(client, fake_provider):
    fake_provider.enqueue(tool_call("ask_human", {"question": "Budget?"}, "q"))
    workflow = await make_workflow(
        client,
        crew=[{"role": "planner", "systemPrompt": "Plan."}],
        hitl={**ASK, "timeout_seconds": 1, "on_timeout": "fail"},
    )
    run_id = await start(client, workflow)
    run = await settle(client, run_id)
    while run["status"] == "waiting_input":
        await asyncio.sleep(0.1)
        run = await settle(client, run_id)
    assert run["status"] == "failed"
    assert run["error"] == "Step 1 (planner) failed: no human response within 1 seconds"
    assert run["steps"][0]["error"] == "no human response within 1 seconds"
    assert run["pending"] is None
    response = await respond(client, run_id, action="input", input="late")
    assert response.status_code == 409


async def test_an_agent_cannot_call_a_tool_it_was_not_given(client, fake_provider, http_server):
    # The agent may send email; the model tries http_request instead.
    fake_provider.enqueue(
        tool_call("http_request", {"method": "GET", "url": http_server.url("/hello")}, "h"),
        reply("ok"),
    )
    workflow = await make_workflow(client)  # tools: ["send_email"] only
    run_id = await start(client, workflow)
    done = await settle(client, run_id)
    assert done["status"] == "completed"
    (result,) = tool_results(fake_provider.requests[-1])
    assert result.is_error and "Unknown tool 'http_request'" in result.content
    assert http_server.requests == []
    assert [t.name for t in fake_provider.requests[0].tools] == ["send_email"]
