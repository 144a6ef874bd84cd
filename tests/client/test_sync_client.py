"""`LoopLlama` (sync) against a real `loopllama serve` subprocess whose Anthropic provider is a
fake provider server: every resource method, the error classes, a pause answered by respond
and by create_and_poll's handler."""

from __future__ import annotations

import pytest

from loopllama import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ConflictError,
    LoopLlama,
    NotFoundError,
)
from loopllama.client.types import Run
from tests.fakes.provider_server import tool_call

FAST = 0.05
ASKING = {"ask_questions": True}


@pytest.fixture
def sdk(live_server):
    with LoopLlama(api_key=live_server.api_key, base_url=live_server.url, timeout=10) as client:
        yield client


def test_workflows_end_to_end(sdk, live_server):
    created = sdk.workflows.create(name="Brief writer", description="Plans, then writes")
    assert created.status == "active" and created.model == "claude-sonnet-4-6"
    assert [a.role for a in created.crew] == ["planner", "writer"]  # the default crew
    assert [w.id for w in sdk.workflows.list()] == [created.id]
    assert sdk.workflows.retrieve(created.id).description == "Plans, then writes"
    assert sdk.workflows.update(created.id, name="Renamed").name == "Renamed"
    assert sdk.workflows.pause(created.id).is_paused
    with pytest.raises(ConflictError, match="Workflow is paused"):
        sdk.runs.create(created.id, "Draft.")
    assert sdk.workflows.activate(created.id).status == "active"
    with pytest.raises(BadRequestError) as invalid:
        sdk.workflows.update(created.id, crew=[])
    assert invalid.value.message == "Array must contain at least 1 element(s)"
    sdk.workflows.delete(created.id)
    with pytest.raises(NotFoundError):
        sdk.workflows.retrieve(created.id)
    stranger = LoopLlama(api_key="ll_live_nope", base_url=live_server.url)
    with stranger, pytest.raises(AuthenticationError, match="Invalid API key"):
        stranger.workflows.list()


def test_list_pages(sdk):
    ids = [sdk.workflows.create(name=f"W{i}").id for i in range(3)]
    first = sdk.workflows.list(limit=2)
    assert [w.id for w in first] == [ids[2], ids[1]] and first.has_more is True
    rest = sdk.workflows.list(after=first[-1].id)
    assert [w.id for w in rest] == [ids[0]] and rest.has_more is False


WRONG_SHAPES = [
    ({"crew": "writer"}, "Expected array, received string"),
    ({"crew": {"role": "w", "systemPrompt": "p"}}, "Expected array, received object"),
    ({"crew": ["writer"]}, "Expected object, received string"),
    ({"tools": ["send_email"]}, "Expected object, received string"),
]


@pytest.mark.parametrize(("fields", "message"), WRONG_SHAPES)
def test_wrong_shapes_are_the_servers_400_not_a_python_error(sdk, fields, message):
    with pytest.raises(BadRequestError) as caught:
        sdk.workflows.create(name="Shapes", **fields)
    assert message in caught.value.message


def test_runs_through_a_pause(sdk, provider_server):
    workflow = sdk.workflows.create(
        name="Asker",
        crew=[{"role": "writer", "systemPrompt": "Ask, then write."}],
        human_in_the_loop=ASKING,
    )
    provider_server.enqueue(tool_call("ask_human", {"question": "Which tone?"}), "Done.")
    run = sdk.runs.create(workflow.id, "Draft a launch email.")
    assert run.status == "queued"
    paused = sdk.runs.poll(run.id, interval=FAST, timeout=20)
    assert paused.status == "waiting_input"
    assert (paused.pending.kind, paused.pending.prompt) == ("input", "Which tone?")
    assert sdk.runs.respond(run.id, action="input", input="Warm.").status == "running"
    done = sdk.runs.poll(run.id, interval=FAST, timeout=20)
    assert done.status == "completed" and done.output == "Done."
    assert done.tokens_in > 0 and done.steps[0].role == "writer"
    assert [r.id for r in sdk.runs.list(workflow.id)] == [run.id]
    assert sdk.runs.retrieve(run.id).output == "Done."


def test_create_and_poll_with_a_handler(sdk, provider_server):
    workflow = sdk.workflows.create(
        name="Asker",
        crew=[{"role": "writer", "systemPrompt": "Ask, then write."}],
        human_in_the_loop=ASKING,
    )
    provider_server.enqueue(tool_call("ask_human", {"question": "Audience?"}), "For SMBs.")
    questions: list[str] = []

    def on_pause(run: Run) -> dict:
        questions.append(run.pending.prompt)
        return {"action": "input", "input": "SMB owners"}

    run = sdk.runs.create_and_poll(
        workflow.id, "Draft.", on_pause=on_pause, interval=FAST, timeout=20
    )
    assert (run.status, run.output, questions) == ("completed", "For SMBs.", ["Audience?"])
    answer = provider_server.requests[-1].messages[-1]["content"][0]
    assert answer["type"] == "tool_result" and "SMB owners" in str(answer["content"])


def test_a_stopped_server_is_a_connection_error(live_server):
    live_server.stop()
    sdk = LoopLlama(api_key=live_server.api_key, base_url=live_server.url, max_retries=1)
    with sdk, pytest.raises(APIConnectionError, match="Connection error"):
        sdk.workflows.list()
