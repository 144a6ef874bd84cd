"""`AsyncLoopLlama` against the real app in process: every resource method, every error class,
failed runs, polling through pauses and responds."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from loopllama import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncLoopLlama,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    LoopLlamaError,
    NotFoundError,
    PollTimeoutError,
    RateLimitError,
)
from loopllama.client.types import Agent, HumanInTheLoop, RespondResult, Run, Workflow
from loopllama.providers.base import ProviderStatusError
from loopllama.providers.fake import reply, tool_call
from tests.client.support import BASE_URL, FlakyTransport, status

FAST = 0.01  # poll interval: the fake model answers at once

CREW = [
    Agent(role="planner", system_prompt="Plan it."),
    {"role": "writer", "systemPrompt": "Write it.", "model": "fake/writer"},
]


async def new_workflow(sdk: AsyncLoopLlama, **fields) -> Workflow:
    fields = {"name": "Brief writer", "model": "fake/test", "crew": CREW, **fields}
    return await sdk.workflows.create(**fields)


async def asking_workflow(sdk: AsyncLoopLlama) -> Workflow:
    return await new_workflow(
        sdk,
        name="Asks first",
        crew=[Agent(role="writer", system_prompt="Ask, then write.")],
        human_in_the_loop=HumanInTheLoop(ask_questions=True),
    )


async def approval_workflow(sdk: AsyncLoopLlama) -> Workflow:
    return await new_workflow(
        sdk,
        name="CRM writer",
        crew=[{"role": "closer", "system_prompt": "Update the CRM.", "tools": ["crm_upsert"]}],
        tools=[
            {
                "name": "crm_upsert",
                "description": "Create or update a CRM contact",
                "input_schema": {"type": "object", "properties": {"email": {"type": "string"}}},
                "url": "https://crm.example.com/hooks/upsert",
                "headers": {"Authorization": "Bearer secret-token"},
            }
        ],
        human_in_the_loop={"approve_tools": ["crm_upsert"]},
    )


# --- workflows --------------------------------------------------------------------------------


async def test_create_returns_a_typed_workflow(sdk):
    workflow = await new_workflow(sdk, description="Plans, then writes")
    assert isinstance(workflow, Workflow)
    assert workflow.id and workflow.name == "Brief writer"
    assert workflow.description == "Plans, then writes"
    assert workflow.status == "active" and not workflow.is_paused
    assert workflow.model == "fake/test"
    assert [(a.role, a.system_prompt, a.model) for a in workflow.crew] == [
        ("planner", "Plan it.", None),
        ("writer", "Write it.", "fake/writer"),
    ]
    assert workflow.created_at is not None
    assert workflow.updated_at is None  # not on the create response


async def test_create_with_tools_and_human_in_the_loop(sdk):
    workflow = await approval_workflow(sdk)
    assert workflow.human_in_the_loop is not None
    assert workflow.human_in_the_loop.approve_tools == ["crm_upsert"]
    assert workflow.crew[0].tools == ["crm_upsert"]
    (tool,) = workflow.tools
    assert tool.name == "crm_upsert" and tool.url == "https://crm.example.com/hooks/upsert"
    assert tool.headers["Authorization"] != "Bearer secret-token"  # masked by the server


async def test_list_and_retrieve(sdk):
    first = await new_workflow(sdk, name="First")
    second = await new_workflow(sdk, name="Second")
    listed = await sdk.workflows.list()
    assert [w.id for w in listed] == [second.id, first.id]  # most recently updated first
    fetched = await sdk.workflows.retrieve(first.id)
    assert fetched.name == "First" and fetched.updated_at is not None


async def test_list_pages_with_limit_and_after(sdk):
    ids = [(await new_workflow(sdk, name=f"W{i}")).id for i in range(3)]
    everything = await sdk.workflows.list()
    assert [w.id for w in everything] == ids[::-1] and everything.has_more is False
    first = await sdk.workflows.list(limit=2)
    assert [w.id for w in first] == [ids[2], ids[1]] and first.has_more is True
    rest = await sdk.workflows.list(limit=2, after=first[-1].id)
    assert [w.id for w in rest] == [ids[0]] and rest.has_more is False
    with pytest.raises(BadRequestError, match="less than or equal to 1000"):
        await sdk.workflows.list(limit=1001)


async def test_update_changes_only_the_given_fields(sdk):
    workflow = await new_workflow(sdk, description="Old")
    updated = await sdk.workflows.update(workflow.id, name="Renamed")
    assert updated.name == "Renamed" and updated.description == "Old"
    cleared = await sdk.workflows.update(workflow.id, description=None)
    assert cleared.description is None and cleared.name == "Renamed"
    crew = await sdk.workflows.update(workflow.id, crew=[Agent("solo", "Do it all.")])
    assert [a.role for a in crew.crew] == ["solo"]


async def test_pause_refuses_runs_until_activated(sdk):
    workflow = await new_workflow(sdk)
    assert (await sdk.workflows.pause(workflow.id)).status == "paused"
    with pytest.raises(ConflictError) as caught:
        await sdk.runs.create(workflow.id, "Draft a brief.")
    assert caught.value.status_code == 409
    assert caught.value.message == "Workflow is paused"
    assert (await sdk.workflows.activate(workflow.id)).status == "active"
    assert (await sdk.runs.create(workflow.id, "Draft a brief.")).status == "queued"


async def test_delete_then_not_found(sdk):
    workflow = await new_workflow(sdk)
    run = await sdk.runs.create_and_poll(workflow.id, "Draft.", interval=FAST)
    assert await sdk.workflows.delete(workflow.id) is None
    with pytest.raises(NotFoundError):
        await sdk.workflows.retrieve(workflow.id)
    assert (await sdk.runs.retrieve(run.id)).status == "completed"  # runs stay retrievable


async def test_extra_body_sends_fields_the_sdk_does_not_know(sdk):
    workflow = await sdk.workflows.create(
        name="Raw", extra_body={"model": "fake/test", "description": "through extra_body"}
    )
    assert workflow.model == "fake/test" and workflow.description == "through extra_body"


# --- runs -------------------------------------------------------------------------------------


async def test_create_poll_retrieve_list(sdk, fake_provider):
    fake_provider.enqueue(reply("1. Define flags", 180, 120), reply("Feature flags...", 232, 166))
    workflow = await new_workflow(sdk)
    run = await sdk.runs.create(workflow.id, "Draft a brief.")
    assert isinstance(run, Run) and run.status == "queued" and run.pending is None
    done = await sdk.runs.poll(run.id, interval=FAST, timeout=10)
    assert done.status == "completed" and done.is_done
    assert done.output == "Feature flags..."
    assert (done.tokens_in, done.tokens_out, done.total_steps) == (412, 286, 2)
    assert done.duration is not None and done.duration >= 0
    assert [(s.order, s.role, s.model) for s in done.steps] == [
        (0, "planner", "fake/test"),
        (1, "writer", "fake/writer"),
    ]
    assert done.steps[0].output == "1. Define flags" and done.steps[0].duration is not None
    assert (await sdk.runs.retrieve(run.id)).output == done.output
    listed = await sdk.runs.list(workflow.id)
    assert [r.id for r in listed] == [run.id]
    assert listed[0].steps is None  # lists omit steps


async def test_a_failed_run_is_a_status_not_an_exception(sdk, fake_provider):
    workflow = await new_workflow(sdk, crew=[Agent("writer", "Write.")])
    fake_provider.enqueue(ProviderStatusError(400, "prompt is too long"))
    run = await sdk.runs.create_and_poll(workflow.id, "Draft.", interval=FAST, timeout=10)
    assert run.status == "failed" and run.is_done
    assert run.error == "Step 1 (writer) failed: model provider returned 400: prompt is too long"
    assert run.output is None


async def test_poll_timeout_raises_with_the_last_run(sdk, fake_provider):
    workflow = await new_workflow(sdk)
    fake_provider.delay = 2.0
    run = await sdk.runs.create(workflow.id, "Slow.")
    with pytest.raises(PollTimeoutError) as caught:
        await sdk.runs.poll(run.id, interval=FAST, timeout=0.2)
    assert isinstance(caught.value, TimeoutError)
    assert caught.value.run.id == run.id
    assert caught.value.run.status in ("queued", "running")


async def test_poll_stops_at_a_question_and_respond_resumes(sdk, fake_provider):
    workflow = await asking_workflow(sdk)
    fake_provider.enqueue(tool_call("ask_human", {"question": "Which tone?"}), reply("Done."))
    run = await sdk.runs.create(workflow.id, "Draft a launch email.")
    paused = await sdk.runs.poll(run.id, interval=FAST, timeout=10)
    assert paused.status == "waiting_input" and paused.is_paused and not paused.is_done
    assert paused.pending is not None and paused.pending.is_question
    assert paused.pending.kind == "input" and paused.pending.prompt == "Which tone?"

    with pytest.raises(BadRequestError):  # approve does not answer a question
        await sdk.runs.respond(run.id, action="approve")
    with pytest.raises(BadRequestError) as caught:  # an answer is required
        await sdk.runs.respond(run.id, action="input")
    assert caught.value.message == "Required"

    result = await sdk.runs.respond(run.id, action="input", input="Friendly and short.")
    assert isinstance(result, RespondResult)
    assert (result.id, result.status) == (run.id, "running")
    done = await sdk.runs.poll(run.id, interval=FAST, timeout=10)
    assert done.status == "completed" and done.output == "Done." and done.pending is None
    answers = [
        part.content
        for message in fake_provider.requests[-1].messages
        for part in message.parts
        if part.type == "tool_result"
    ]
    assert answers == ["Friendly and short."]
    with pytest.raises(ConflictError) as late:
        await sdk.runs.respond(run.id, action="input", input="Again")
    assert late.value.message == "Run is not waiting for input"


async def test_an_approval_pause_can_be_rejected_with_a_reason(sdk, fake_provider):
    workflow = await approval_workflow(sdk)
    fake_provider.enqueue(tool_call("crm_upsert", {"email": "ada@example.com"}), reply("Skipped."))
    run = await sdk.runs.create(workflow.id, "Add Ada to the CRM.")
    paused = await sdk.runs.poll(run.id, interval=FAST, timeout=10)
    pending = paused.pending
    assert pending is not None and pending.is_approval
    assert pending.tool == "crm_upsert" and pending.tool_input == {"email": "ada@example.com"}
    assert pending.prompt
    await sdk.runs.respond(run.id, action="reject", reason="Not before the launch.")
    done = await sdk.runs.poll(run.id, interval=FAST, timeout=10)
    assert done.status == "completed"
    (call,) = done.steps[0].tool_calls
    assert call.name == "crm_upsert" and call.is_error
    assert "Not before the launch." in json.dumps(call.result)


async def test_create_and_poll_drives_pauses_with_a_handler(sdk, fake_provider):
    workflow = await asking_workflow(sdk)
    fake_provider.enqueue(
        tool_call("ask_human", {"question": "Audience?"}),
        tool_call("ask_human", {"question": "Length?"}, call_id="call_2"),
        reply("Final draft."),
    )
    seen: list[str] = []

    def on_pause(run: Run):
        seen.append(run.pending.prompt)
        if run.pending.prompt == "Audience?":
            return {"action": "input", "input": "SMB owners"}
        return "200 words"  # a str answers a question

    run = await sdk.runs.create_and_poll(
        workflow.id, "Draft.", on_pause=on_pause, interval=FAST, timeout=10
    )
    assert run.status == "completed" and run.output == "Final draft."
    assert seen == ["Audience?", "Length?"]


async def test_create_and_poll_accepts_an_async_handler(sdk, fake_provider):
    workflow = await approval_workflow(sdk)
    fake_provider.enqueue(tool_call("crm_upsert", {"email": "a@b.co"}), reply("No CRM."))

    async def on_pause(run: Run):
        await asyncio.sleep(0)
        return {"action": "reject", "reason": "no"}

    run = await sdk.runs.create_and_poll(
        workflow.id, "Add a@b.co.", on_pause=on_pause, interval=FAST, timeout=10
    )
    assert run.status == "completed" and run.output == "No CRM."


async def test_create_and_poll_returns_the_paused_run_without_a_handler_or_on_none(
    sdk, fake_provider
):
    workflow = await asking_workflow(sdk)
    fake_provider.enqueue(tool_call("ask_human", {"question": "Tone?"}))
    run = await sdk.runs.create_and_poll(workflow.id, "Draft.", interval=FAST, timeout=10)
    assert run.is_paused and run.pending.prompt == "Tone?"

    fake_provider.enqueue(tool_call("ask_human", {"question": "Tone?"}))
    run = await sdk.runs.create_and_poll(
        workflow.id, "Draft.", on_pause=lambda run: None, interval=FAST, timeout=10
    )
    assert run.is_paused


async def test_a_handler_answer_of_the_wrong_type_is_a_type_error(sdk, fake_provider):
    workflow = await asking_workflow(sdk)
    fake_provider.enqueue(tool_call("ask_human", {"question": "Tone?"}))
    with pytest.raises(TypeError, match="on_pause must return"):
        await sdk.runs.create_and_poll(
            workflow.id, "Draft.", on_pause=lambda run: 42, interval=FAST, timeout=10
        )


# --- errors -----------------------------------------------------------------------------------


async def test_validation_errors_are_bad_request_with_the_servers_message(sdk):
    with pytest.raises(BadRequestError) as caught:
        await sdk.workflows.create(name="")
    error = caught.value
    assert isinstance(error, APIStatusError) and isinstance(error, LoopLlamaError)
    assert error.status_code == 400
    assert error.message == "String must contain at least 1 character(s)"
    assert error.body == {"error": "String must contain at least 1 character(s)"}
    assert str(error) == "String must contain at least 1 character(s) (HTTP 400)"
    workflow = await new_workflow(sdk)
    with pytest.raises(BadRequestError, match="at least 1 character"):
        await sdk.runs.create(workflow.id, "")


@pytest.mark.parametrize(
    ("key", "message"),
    [("ll_live_unknown", "Invalid API key"), ("sk-not-ours", "Invalid token format")],
)
async def test_bad_keys_are_authentication_errors(transport, key, message):
    async with AsyncLoopLlama(api_key=key, base_url=BASE_URL, transport=transport) as client:
        with pytest.raises(AuthenticationError) as caught:
            await client.workflows.list()
    assert caught.value.status_code == 401 and caught.value.message == message
    assert transport.attempts("GET") == 1  # a 401 is never retried


async def test_another_accounts_objects_are_not_found(sdk, transport, other_api_key):
    workflow = await new_workflow(sdk)
    run = await sdk.runs.create(workflow.id, "Mine.")
    async with AsyncLoopLlama(
        api_key=other_api_key, base_url=BASE_URL, transport=transport
    ) as other:
        for call in (
            other.workflows.retrieve(workflow.id),
            other.workflows.update(workflow.id, name="Stolen"),
            other.workflows.delete(workflow.id),
            other.runs.create(workflow.id, "Theirs."),
            other.runs.list(workflow.id),
            other.runs.retrieve(run.id),
            other.runs.respond(run.id, action="approve"),
        ):
            with pytest.raises(NotFoundError) as caught:
                await call
            assert (caught.value.status_code, caught.value.message) == (404, "Not found")


async def test_rate_limit_and_server_errors_map_to_their_classes(app, api_key):
    transport = FlakyTransport(
        app,
        status(429, "GET", "/v1/workflows", headers={"Retry-After": "7"}),
        status(500, "GET", "/v1/workflows"),
        status(502, "GET", "/v1/workflows"),
    )
    async with AsyncLoopLlama(
        api_key=api_key, base_url=BASE_URL, transport=transport, max_retries=0
    ) as client:
        with pytest.raises(RateLimitError) as limited:
            await client.workflows.list()
        assert limited.value.status_code == 429 and limited.value.retry_after == 7.0
        with pytest.raises(InternalServerError) as failed:
            await client.workflows.list()
        assert (failed.value.status_code, failed.value.message) == (500, "Internal server error")
        with pytest.raises(InternalServerError) as gateway:
            await client.workflows.list()
        assert gateway.value.status_code == 502


async def test_other_statuses_are_plain_status_errors(sdk):
    with pytest.raises(APIStatusError) as caught:
        await sdk.workflows.create(name="Big", description="x" * 2_000_000)
    assert type(caught.value) is APIStatusError
    assert (caught.value.status_code, caught.value.message) == (413, "Request body too large")


async def test_no_server_is_a_connection_error(api_key):
    async with AsyncLoopLlama(
        api_key=api_key, base_url="http://127.0.0.1:9", max_retries=0
    ) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.workflows.list()
    assert not isinstance(caught.value, APITimeoutError)
    assert isinstance(caught.value.__cause__, httpx.ConnectError)


async def test_a_server_that_never_answers_is_a_timeout(api_key):
    writers: list[asyncio.StreamWriter] = []
    # Accepts connections, reads nothing, never answers.
    server = await asyncio.start_server(lambda r, w: writers.append(w), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with AsyncLoopLlama(
            api_key=api_key, base_url=f"http://127.0.0.1:{port}", timeout=0.2, max_retries=0
        ) as client:
            with pytest.raises(APITimeoutError):
                await client.workflows.list()
    finally:
        for writer in writers:
            writer.close()
        server.close()
        await server.wait_closed()


async def test_ids_are_checked_and_escaped(sdk):
    with pytest.raises(ValueError, match="run_id"):
        await sdk.runs.retrieve("")
    with pytest.raises(NotFoundError):
        await sdk.runs.retrieve("../workflows")  # escaped: never reaches another route


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"crew": "writer"}, "Expected array, received string"),
        ({"crew": {"role": "w", "systemPrompt": "p"}}, "Expected array, received object"),
        ({"tools": ["send_email"]}, "Expected object, received string"),
    ],
)
async def test_wrong_shapes_are_the_servers_400_not_a_python_error(sdk, fields, message):
    with pytest.raises(BadRequestError) as caught:
        await sdk.workflows.create(name="Shapes", model="fake/test", **fields)
    with pytest.raises(BadRequestError):
        workflow = await sdk.workflows.create(name="Fine", model="fake/test")
        await sdk.workflows.update(workflow.id, **fields)
    assert message in caught.value.message
