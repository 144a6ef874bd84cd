"""Pauses live in the database: a paused run survives a restart, and an approved tool call
interrupted by a crash is never repeated blindly."""

from __future__ import annotations

import json

import pytest

from loopllama.providers.fake import tool_call
from tests.fakes.provider_server import text
from tests.fakes.provider_server import tool_call as wire_tool_call
from tests.fakes.slow_endpoint import SlowEndpoint
from tests.helpers import LiveServer, wait_for_run
from tests.hitl.support import make_workflow, respond, settle, start

pytestmark = pytest.mark.slow


async def test_a_paused_run_holds_no_task_in_the_engine(client, app, fake_provider):
    fake_provider.enqueue(tool_call("ask_human", {"question": "?"}))
    workflow = await make_workflow(
        client, crew=[{"role": "r", "systemPrompt": "p"}], hitl={"ask_questions": True}
    )
    run_id = await start(client, workflow)
    assert (await settle(client, run_id))["status"] == "waiting_input"
    assert app.state.services.dispatcher.active == 0


async def test_a_paused_run_survives_a_restart(tmp_path, provider_server):
    server = LiveServer(tmp_path, provider_server)
    server.start()
    try:
        provider_server.enqueue(wire_tool_call("ask_human", {"question": "Which region?"}))
        async with server.client() as http:
            workflow = await make_workflow(
                http,
                model="claude-test",
                crew=[{"role": "analyst", "systemPrompt": "Analyse."}],
                hitl={"ask_questions": True},
            )
            run_id = await start(http, workflow)
            paused = await wait_for_run(http, run_id)
            assert paused["pending"] == {"kind": "input", "prompt": "Which region?"}

        server.kill()
        server.start()
        provider_server.enqueue(text("EMEA it is.", 9, 3))
        async with server.client() as http:
            still = await wait_for_run(http, run_id)
            assert still["status"] == "waiting_input"
            assert (await respond(http, run_id, action="input", input="EMEA")).status_code == 202
            done = await wait_for_run(http, run_id, ("completed", "failed"))
        assert done["status"] == "completed"
        assert done["output"] == "EMEA it is."
        answer = provider_server.requests[-1].messages[-1]["content"][0]
        assert answer["type"] == "tool_result" and "EMEA" in json.dumps(answer["content"])
    finally:
        server.stop()


async def test_crash_during_an_approved_tool_call_never_repeats_it(tmp_path, provider_server):
    endpoint = SlowEndpoint()
    server = LiveServer(tmp_path, provider_server, LOOPLLAMA_HTTP_TOOL_ALLOW="127.0.0.1")
    server.start()
    try:
        provider_server.enqueue(wire_tool_call("crm_upsert", {"email": "ada@example.com"}))
        async with server.client() as http:
            workflow = await make_workflow(
                http,
                model="claude-test",
                crew=[{"role": "crm", "systemPrompt": "CRM.", "tools": ["crm_upsert"]}],
                tools=[
                    {
                        "name": "crm_upsert",
                        "description": "Upsert a contact",
                        "input_schema": {
                            "type": "object",
                            "properties": {"email": {"type": "string"}},
                        },
                        "url": endpoint.url,
                    }
                ],
                hitl={"approve_tools": ["crm_upsert"]},
            )
            run_id = await start(http, workflow)
            assert (await wait_for_run(http, run_id))["pending"]["tool"] == "crm_upsert"
            assert (await respond(http, run_id, action="approve")).status_code == 202
            assert endpoint.arrived.wait(15), "the approved tool was never called"

        server.kill()  # dies while the user's endpoint is still working on the call
        endpoint.release.set()
        provider_server.enqueue(text("I will check the CRM before retrying.", 5, 5))
        server.start()
        async with server.client() as http:
            done = await wait_for_run(http, run_id, ("completed", "failed"), timeout=30)
        assert done["status"] == "completed", done
        assert len(endpoint.calls) == 1  # not repeated
        assert endpoint.calls[0]["key"].startswith("loopllama-")
        (call,) = done["steps"][0]["tool_calls"]
        assert call["status"] == "unknown"
        told = provider_server.requests[-1].messages[-1]["content"][0]
        assert told["is_error"] is True
        assert "unknown" in json.dumps(told["content"])
    finally:
        server.stop()
        endpoint.close()
