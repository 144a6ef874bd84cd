"""Traces: the real OTLP/HTTP exporter sends protobuf to an in-process receiver on 127.0.0.1.

In process (SQLite): span names, the gen_ai.* attributes, the parent chain from the trigger
request down to the tool call, and message content only when the operator opts in. Across
processes (PostgreSQL): the trigger request's trace is continued by a separate worker.
"""

from __future__ import annotations

import pytest

from loopllama.providers import fake
from tests.fakes.otlp_receiver import OtlpReceiver, Span
from tests.helpers import app_client, wait_for_run
from tests.hitl.support import make_workflow, start

TOOL = {
    "name": "crm_upsert",
    "description": "Create or update a CRM contact",
    "input_schema": {"type": "object", "properties": {"email": {"type": "string"}}},
    "headers": {"Authorization": "Bearer trace-tool-secret"},
}


@pytest.fixture
def receiver(monkeypatch):
    with OtlpReceiver() as receiver:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.url)
        monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "50")
        yield receiver


@pytest.fixture
def settings(settings):  # no metrics port: traces alone
    from loopllama.settings import TelemetrySettings

    return settings.model_copy(update={"telemetry": TelemetrySettings()})


async def _run_with_a_tool(
    settings, api_key, fake_provider, http_server, path: str = "/echo"
) -> dict:
    from loopllama.providers.registry import ProviderRegistry

    registry = ProviderRegistry(settings)
    registry.register("fake", fake_provider)
    fake_provider.enqueue(
        fake.tool_call("crm_upsert", {"email": "ada@example.com"}, call_id="toolu_9"),
        fake.reply("Contact saved.", tokens_in=30, tokens_out=7),
        fake.reply("Looks right.", tokens_in=12, tokens_out=4),
    )
    async with app_client(settings, api_key, providers=registry) as client:
        workflow = await make_workflow(
            client,
            crew=[
                {"role": "crm", "systemPrompt": "Keep the CRM.", "tools": ["crm_upsert"]},
                {"role": "reviewer", "systemPrompt": "Review the work."},
            ],
            tools=[{**TOOL, "url": http_server.url(path)}],
        )
        run = await wait_for_run(client, await start(client, workflow, "Add Ada"))
    assert run["status"] == "completed", run
    return run  # the app has shut down: every span is flushed


def by_name(spans: list[Span], name: str) -> list[Span]:
    return [s for s in spans if s.name == name]


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_genai_spans_under_the_trigger_request(
    receiver, settings, api_key, fake_provider, http_server
):
    run = await _run_with_a_tool(settings, api_key, fake_provider, http_server)
    spans = receiver.wait_for(lambda s: any(x.name == "invoke_agent reviewer" for x in s))

    (trigger,) = by_name(spans, "POST /v1/workflows/{workflow_id}/runs")
    (run_span,) = by_name(spans, "run")
    (crm,) = by_name(spans, "invoke_agent crm")
    (reviewer,) = by_name(spans, "invoke_agent reviewer")
    chats = by_name(spans, "chat test")
    (tool,) = by_name(spans, "execute_tool crm_upsert")
    assert len(chats) == 3

    # One trace, started by the trigger request: trigger > run > step > model call / tool.
    assert {s.trace_id for s in [trigger, run_span, crm, reviewer, *chats, tool]} == {
        trigger.trace_id
    }
    assert run_span.parent_id == trigger.span_id
    assert crm.parent_id == reviewer.parent_id == run_span.span_id
    assert {c.parent_id for c in chats} == {crm.span_id, reviewer.span_id}
    assert tool.parent_id == crm.span_id
    assert trigger.resource["service.name"] == "loopllama"

    assert run_span.attributes["loopllama.run.id"] == run["id"]
    assert crm.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert crm.attributes["gen_ai.agent.name"] == "crm"
    last = chats[-1].attributes
    assert last["gen_ai.operation.name"] == "chat"
    assert last["gen_ai.provider.name"] == "fake"
    assert last["gen_ai.request.model"] == "test"
    assert last["gen_ai.response.model"] == "test"
    assert (last["gen_ai.usage.input_tokens"], last["gen_ai.usage.output_tokens"]) == (12, 4)
    assert tool.attributes["gen_ai.operation.name"] == "execute_tool"
    assert tool.attributes["gen_ai.tool.name"] == "crm_upsert"
    assert tool.attributes["gen_ai.tool.call.id"] == "toolu_9"

    # No prompt, completion or tool argument unless the operator opts in; never a header.
    every_value = repr([s.attributes for s in spans])
    for text in ("Keep the CRM", "Add Ada", "Contact saved", "ada@example.com", "trace-tool"):
        assert text not in every_value
    assert "gen_ai.input.messages" not in last


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_message_content_when_the_operator_opts_in(
    receiver, monkeypatch, settings, api_key, fake_provider, http_server
):
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")
    # /hello answers "hello" (/echo would echo the request's headers back as the result).
    await _run_with_a_tool(settings, api_key, fake_provider, http_server, "/hello")
    spans = receiver.wait_for(lambda s: any(x.name == "invoke_agent reviewer" for x in s))
    first = by_name(spans, "chat test")[0].attributes
    assert first["gen_ai.system_instructions"] == "Keep the CRM."
    assert "Add Ada" in first["gen_ai.input.messages"]
    (tool,) = by_name(spans, "execute_tool crm_upsert")
    assert "ada@example.com" in tool.attributes["gen_ai.tool.call.arguments"]
    assert "hello" in tool.attributes["gen_ai.tool.call.result"]
    assert "trace-tool-secret" not in repr([s.attributes for s in spans])


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_no_spans_and_no_trace_context_when_off(settings, api_key, fake_provider):
    from loopllama import telemetry

    async with app_client(settings, api_key) as client:
        assert telemetry.traceparent() is None
        workflow = await make_workflow(
            client, crew=[{"role": "a", "systemPrompt": "A."}], model="claude-sonnet-4-6"
        )
        await start(client, workflow)
        from loopllama.store.db import Database
        from loopllama.store.tables import runs

        db = Database(settings.database.url, pool_size=1)
        async with db.read() as conn:
            stored = (await conn.execute(runs.select())).first()
        await db.dispose()
    assert stored.trace_context is None


@pytest.mark.parametrize("backend", ["sqlite"], indirect=True)
async def test_a_failed_model_call_is_an_error_span(receiver, settings, api_key, fake_provider):
    from loopllama.providers.registry import ProviderRegistry

    registry = ProviderRegistry(settings)
    registry.register("fake", fake_provider)
    fake_provider.enqueue(fake.ProviderError("the model is gone"))
    async with app_client(settings, api_key, providers=registry) as client:
        workflow = await make_workflow(client, crew=[{"role": "a", "systemPrompt": "A."}])
        run = await wait_for_run(client, await start(client, workflow))
    assert run["status"] == "failed"
    spans = receiver.wait_for(lambda s: any(x.name == "chat test" for x in s))
    (chat,) = by_name(spans, "chat test")
    (step,) = by_name(spans, "invoke_agent a")
    assert chat.status_code == 2  # STATUS_CODE_ERROR
    assert chat.attributes["error.type"] == "ProviderError"
    assert step.status_code != 2  # the step ended (failed) without raising
    assert "gen_ai.usage.input_tokens" not in chat.attributes
