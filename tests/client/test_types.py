"""Typed objects are tolerant: a newer server (extra fields, missing fields, odd values) never
breaks them, and `to_dict()` gives back the wire form, unknown fields included."""

from __future__ import annotations

from datetime import UTC, datetime

from loopllama.client.types import NOT_GIVEN, Agent, NotGiven, Pending, Run, Step, Workflow

RUN = {
    "id": "r1",
    "workflow_id": "w1",
    "status": "waiting_input",
    "input": "Draft.",
    "output": None,
    "error": None,
    "total_steps": 1,
    "tokens_in": 10,
    "tokens_out": 5,
    "started_at": "2026-05-20T17:10:01.000Z",
    "finished_at": None,
    "created_at": "2026-05-20T17:10:00.000Z",
    "pending": {"kind": "approval", "prompt": "Send it?", "tool": "send_email",
                "tool_input": {"to": "a@b.co"}, "id": "p1"},
    "steps": [
        {"id": "s1", "order": 0, "role": "writer", "model": "fake/test", "input": "Draft.",
         "output": None, "error": None, "tokens_in": 10, "tokens_out": 5,
         "started_at": "2026-05-20T17:10:01.000Z", "finished_at": None,
         "tool_calls": [{"id": "c1", "name": "send_email", "input": {"to": "a@b.co"},
                         "status": "awaiting", "result": None, "is_error": False,
                         "started_at": None, "finished_at": None}]}
    ],
    "cost_usd": 0.01,
}  # fmt: skip


def test_a_run_keeps_what_it_does_not_know_and_round_trips():
    run = Run.from_dict(RUN)
    assert run.is_paused and run.pending.is_approval and run.pending.tool == "send_email"
    assert run.pending.extra == {"id": "p1"}
    assert run.extra == {"cost_usd": 0.01}
    assert run.started_at == datetime(2026, 5, 20, 17, 10, 1, tzinfo=UTC)
    assert run.steps[0].tool_calls[0].status == "awaiting"
    assert run.to_dict() == RUN


def test_missing_and_mistyped_fields_take_their_defaults():
    run = Run.from_dict({"id": "r1", "status": "running", "tokens_in": None, "steps": "?"})
    assert (run.tokens_in, run.tokens_out, run.total_steps) == (0, 0, 0)
    assert run.steps is None and run.pending is None and run.output is None
    assert run.duration is None and not run.is_done
    step = Step.from_dict({"id": "s1", "order": "first", "tool_calls": None})
    assert step.order == 0 and step.tool_calls == [] and step.duration is None
    assert Run.from_dict({}).id == ""


def test_a_status_the_sdk_does_not_know_is_kept():
    assert Run.from_dict({"id": "r", "status": "cancelling"}).status == "cancelling"
    assert Run.from_dict({"id": "r", "status": "cancelled"}).is_done


def test_an_unreadable_timestamp_is_kept_verbatim():
    workflow = Workflow.from_dict({"id": "w", "created_at": "yesterday"})
    assert workflow.created_at is None
    assert workflow.to_dict()["created_at"] == "yesterday"


def test_workflow_wire_names():
    workflow = Workflow.from_dict(
        {
            "id": "w",
            "name": "N",
            "crew": [{"role": "r", "systemPrompt": "p", "temperature": 0.2}],
            "human_in_the_loop": None,
            "tools": [],
            "created_at": "2026-05-20T17:00:00.000Z",
            "updated_at": "2026-05-20T17:00:00.000Z",
        }
    )
    (agent,) = workflow.crew
    assert agent.system_prompt == "p" and agent.extra == {"temperature": 0.2}
    assert workflow.to_dict()["crew"] == [{"role": "r", "systemPrompt": "p", "temperature": 0.2}]
    assert Agent("a", "b", model="m").to_dict() == {"role": "a", "systemPrompt": "b", "model": "m"}


def test_pending_kinds_and_not_given():
    assert Pending.from_dict({"kind": "input", "prompt": "Q?"}).is_question
    assert not NOT_GIVEN and NotGiven() is NOT_GIVEN and repr(NOT_GIVEN) == "NOT_GIVEN"
