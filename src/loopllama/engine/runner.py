"""Advance one run until it pauses or ends: steps in crew order, each a loop of model calls.

A step calls its model with the agent's tools; when the model asks for tool calls they are run
(or the run pauses for a human) and the model is called again with the results; the step ends
when the model answers with text. Everything is persisted as it happens (transitions.py), so
`advance` can be called again at any point (after a crash, a restart or a human's answer) and
picks up where the database says the run stands:

- a finished step is never re-run; a started one continues from its saved transcript;
- a tool call is recorded before it starts and when it ends; one found started but unfinished
  is not repeated: the agent is told its outcome is unknown.

A pass can be interrupted (`Runner.abort`, or the run's time limit): the model call in flight
is cancelled, which closes its HTTP request, so the provider stops generating. A tool call in
flight is let finish and its outcome recorded first. The time limit counts the time spent
`running` only: each pass knows what earlier passes used (`active_seconds`).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson

from loopllama import telemetry
from loopllama.engine import transitions as t
from loopllama.engine.notify import Hub, LocalHub
from loopllama.engine.prompts import ASK_HUMAN, step_input
from loopllama.engine.retry import complete_with_retries
from loopllama.engine.tools import ToolContext, ToolOutcome, build_toolbox, summarize_call
from loopllama.limits import MAX_JSON_DEPTH, value_depth_exceeds
from loopllama.providers.base import (
    Message,
    ModelRequest,
    ModelResponse,
    ProviderError,
    TextPart,
    ToolCallPart,
    ToolResultPart,
)
from loopllama.providers.pricing import CallUsage, PriceTable
from loopllama.providers.registry import ProviderRegistry
from loopllama.providers.routing import UnknownModel, route_model, unknown_model_message
from loopllama.settings import Settings
from loopllama.store.db import Database
from loopllama.store.runs import get_step_tool_calls, get_steps

log = logging.getLogger(__name__)

UNKNOWN_OUTCOME = (
    "The outcome of this tool call is unknown: the server stopped while it was running, so it "
    "may or may not have taken effect. It was not repeated; check before trying it again."
)


class Outcome(enum.Enum):
    DONE = "done"  # the step finished; go on
    PAUSED = "paused"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class Advanced:
    """What one call of `advance` left the run in."""

    status: str  # "completed", "failed", "waiting_input"
    pause_deadline: datetime | None = None


CANCELLED = "cancelled"
TIME_LIMIT = "time limit"


class Runner:
    def __init__(
        self,
        db: Database,
        providers: ProviderRegistry,
        settings: Settings,
        hub: Hub | None = None,
    ) -> None:
        self.db = db
        self.providers = providers
        self.settings = settings
        self.hub = hub or LocalHub()  # where text deltas go (engine/notify.py)
        self.prices = PriceTable.from_file(settings.models.prices_file, providers.extra_names)
        self._drivers: dict[str, _RunDriver] = {}  # the runs this process is advancing

    async def advance(self, run_id: str) -> Advanced | None:
        """Drive `run_id` as far as it can go. None when the run had nothing to do."""
        try:
            async with self.db.write() as conn:
                claimed = await t.claim_and_start(conn, run_id, _first_step)
                if claimed is None:
                    return None
                run, first = claimed
                driver = _RunDriver(self, run)
                await driver.load(conn, first)
            self._drivers[run_id] = driver
            try:
                with telemetry.run_pass(run):
                    advanced = await driver.drive_within_limits()
                if advanced is not None:
                    telemetry.run_reached(advanced.status)
                return advanced
            finally:
                if self._drivers.get(run_id) is driver:
                    del self._drivers[run_id]
        except t.LostOwnership:
            log.info("run %s is no longer ours (cancelled or taken over); leaving it", run_id)
            return None

    def abort(self, run_id: str) -> bool:
        """Stop advancing `run_id` here, now (it was cancelled). True if this process held it."""
        driver = self._drivers.get(run_id)
        if driver is None:
            return False
        driver.interrupt(CANCELLED)
        return True


class _RunDriver:
    """One pass over one run, owned by one attempt."""

    def __init__(self, runner: Runner, run: dict[str, Any]) -> None:
        self.db = runner.db
        self.hub = runner.hub
        self.providers = runner.providers
        self.settings = runner.settings
        self.prices = runner.prices
        self.run = run
        # What the run has spent so far (its budget's meter); this attempt is its only writer.
        self.spent_tokens: int = run["tokens_in"] + run["tokens_out"]
        self.spent_cost: float | None = run.get("cost_usd")
        self.run_id: str = run["id"]
        self.attempt: int = run["attempt"]
        self.snapshot: dict[str, Any] = run["snapshot"]
        self.hitl: dict[str, Any] = self.snapshot.get("human_in_the_loop") or {}
        self.crew: list[dict[str, Any]] = self.snapshot["crew"]
        self.deadline: datetime | None = None
        self.steps: list[dict[str, Any]] = []  # as the database had them when claimed
        self._tools: dict[str, Any] | None = None
        self._started: dict[str, Any] | None = None
        self._completed = False
        limit = self.snapshot.get("max_run_seconds") or runner.settings.engine.max_run_seconds
        self.limit: int = limit
        self._began = time.monotonic()
        self._task: asyncio.Task[Advanced] | None = None
        self._interrupted: str | None = None
        self._in_tool = False

    # -- interruptions -------------------------------------------------------------------------

    def interrupt(self, reason: str) -> None:
        """Cancel the pass (its model call in flight with it), unless a tool call is running:
        then as soon as its outcome is recorded."""
        if self._interrupted is not None:
            return
        self._interrupted = reason
        if self._task is not None and not self._in_tool:
            self._task.cancel()

    async def drive_within_limits(self) -> Advanced | None:
        """`drive` in a task of its own that a cancel or the time limit can interrupt."""
        self._began = time.monotonic()
        remaining = max(0.0, self.limit - (self.run.get("active_seconds") or 0.0))
        self._task = asyncio.create_task(self.drive(), name=f"drive:{self.run_id}")
        if self._interrupted is not None:
            self._task.cancel()
        timer = asyncio.get_running_loop().call_later(remaining, self.interrupt, TIME_LIMIT)
        try:
            return await self._task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if self._interrupted is None or (current is not None and current.cancelling()):
                raise  # the process is stopping: not ours to decide
        finally:
            timer.cancel()
        if self._interrupted == CANCELLED:
            return None  # the cancel is recorded already
        async with self.db.write() as conn:
            steps = await get_steps(conn, self.run_id)
            if not steps:
                return None
            # The step in progress (the pass may have stopped between two steps' writes).
            step = next((s for s in reversed(steps) if s["finished_at"] is None), steps[-1])
            reason = f"run exceeded its time limit of {self.limit} seconds"
            await t.fail_run(conn, self.run_id, self.attempt, step, reason)
        return Advanced("failed")

    def _checkpoint(self) -> None:
        """After a tool call: an interruption that waited for it takes effect now."""
        if self._interrupted is not None:
            raise asyncio.CancelledError()

    async def load(self, conn: Any, first: dict[str, Any] | None) -> None:
        """Read the run's steps in the claim's transaction; a fresh run's first step started
        in it too (`first`: one transaction, one run UPDATE, from the queue to the first model
        call)."""
        if first is not None:
            self.steps = [first]
            return
        self.steps = await get_steps(conn, self.run_id)
        if not self.steps:
            first = await t.start_step(conn, self.run_id, self.attempt, **self._step_spec(0, []))
            self.steps = [first]

    async def drive(self) -> Advanced:
        existing = self.steps
        prior: list[tuple[str, str]] = []
        started: dict[str, Any] | None = None  # the next step, started as the last one closed
        for order, agent in enumerate(self.crew):
            step = existing[order] if order < len(existing) else started
            if step is not None and step["finished_at"] is not None and step["error"] is None:
                prior.append((step["role"], step["output"]))
                continue
            if step is None:
                async with self.db.write() as conn:
                    step = await t.start_step(
                        conn, self.run_id, self.attempt, **self._step_spec(order, prior)
                    )
            with telemetry.step(order, step["role"], step["model"]) as probe:
                outcome = await self._run_step(agent, step, prior)
                probe.outcome = outcome.value
            if outcome is Outcome.PAUSED:
                return Advanced("waiting_input", self.deadline)
            if outcome is Outcome.FAILED:
                return Advanced("failed")
            prior.append((step["role"], step["output"]))
            started = self._started
        if not self._completed:  # every step had finished before this pass (a crash between)
            async with self.db.write() as conn:
                await t.complete_run(conn, self.run_id, self.attempt, prior[-1][1])
        return Advanced("completed")

    def _step_spec(self, order: int, prior: list[tuple[str, str]]) -> dict[str, Any]:
        return _step_spec(self.run, order, prior)

    # -- one step ------------------------------------------------------------------------------

    async def _run_step(
        self, agent: dict[str, Any], step: dict[str, Any], prior: list[tuple[str, str]]
    ) -> Outcome:
        try:
            route = route_model(step["model"], extra_providers=self.providers.extra_names)
        except UnknownModel:
            return await self._fail(step, unknown_model_message(step["model"]))
        try:
            provider = self.providers.get(route.provider)
        except ProviderError as error:
            return await self._fail(step, error.reason)

        # Only the tools this agent lists: a model naming another one gets an error result.
        every_tool = self._toolbox() if agent.get("tools") else {}
        toolbox = {
            name: every_tool[name] for name in agent.get("tools") or [] if name in every_tool
        }
        specs = tuple(tool.spec for tool in toolbox.values())
        if self.hitl.get("ask_questions"):
            specs += (ASK_HUMAN,)
        transcript = [Message.from_json(m) for m in step["transcript"]]
        limit = self.settings.models.max_calls_per_step

        while True:
            last = transcript[-1] if transcript else None
            if last is not None and last.role == "assistant" and last.tool_calls:
                results = await self._resolve_tool_calls(step, transcript, toolbox)
                if results is None:
                    return Outcome.PAUSED
                transcript.append(Message("user", tuple(results)))
                async with self.db.write() as conn:
                    await t.record_turn(
                        conn, self.run_id, self.attempt, step, transcript=_dump(transcript)
                    )
                continue
            if step["model_calls"] >= limit:
                return await self._fail(
                    step,
                    f"the agent made {limit} model calls without finishing its step "
                    "(limit set by LOOPLLAMA_MAX_MODEL_CALLS_PER_STEP)",
                )
            on_text = self._deltas(step)
            streamed = self.hub.watching(self.run_id) and getattr(provider, "streams", False)
            request = ModelRequest(
                model=route.model,
                system=agent["systemPrompt"],
                messages=(Message.user(step["input"]), *transcript),
                tools=specs,
                max_tokens=self.settings.models.max_tokens,
                on_text=on_text if streamed else None,
            )
            try:
                with telemetry.model_call(route.provider, route.model, request) as call:
                    response = await complete_with_retries(provider, request, self.settings.models)
                    telemetry.model_answered(call, route.provider, route.model, response)
            except ProviderError as error:
                await self.hub.flush()
                return await self._fail(step, error.reason)
            if not streamed and response.text and self.hub.watching(self.run_id):
                on_text(response.text)  # not streamed (nobody watched, or it cannot): one piece
            await self.hub.flush()  # the call's deltas reach streams before what follows
            problem = _tool_input_problem(response.tool_calls)
            if problem is not None:  # it could be neither stored nor validated
                return await self._fail(step, problem)
            response = _storable(response)
            transcript.append(response.message)
            cost = self._cost(step["model"], response)
            self.spent_tokens += response.tokens_in + response.tokens_out
            self.spent_cost = t.add_cost(self.spent_cost, cost)
            over = t.over_budget(self.snapshot, self.spent_tokens, self.spent_cost)
            async with self.db.write() as conn:
                if not response.tool_calls and over is None:
                    await self._close(conn, step, prior, transcript, response, cost)
                    return Outcome.DONE
                await t.record_turn(
                    conn,
                    self.run_id,
                    self.attempt,
                    step,
                    transcript=_dump(transcript),
                    tokens_in=response.tokens_in,
                    tokens_out=response.tokens_out,
                    model_call=True,
                    cost=cost,
                )
                if over is not None:  # the call is recorded (and paid for); no further one
                    await t.fail_run(conn, self.run_id, self.attempt, step, over)
                    return Outcome.FAILED

    async def _close(
        self,
        conn: Any,
        step: dict[str, Any],
        prior: list[tuple[str, str]],
        transcript: list[Message],
        response: Any,
        cost: float | None,
    ) -> None:
        """The step's final answer: close it and start the next step (or complete the run)."""
        order = step["order"]
        following = None
        if order + 1 < len(self.crew):
            following = self._step_spec(order + 1, [*prior, (step["role"], response.text)])
        self._started = await t.close_step(
            conn,
            self.run_id,
            self.attempt,
            step,
            transcript=_dump(transcript),
            tokens_in=response.tokens_in,
            tokens_out=response.tokens_out,
            output=response.text,
            next_step=following,
            cost=cost,
        )
        self._completed = following is None

    def _deltas(self, step: dict[str, Any]) -> Any:
        """`step.delta` events (ephemeral, never stored) for the text of one model call."""
        publish, run_id = self.hub.publish_delta, self.run_id
        step_id, order = step["id"], step["order"]

        def on_text(text: str) -> None:
            if text:
                publish(run_id, {"step_id": step_id, "order": order, "text": text})

        return on_text

    def _cost(self, model: str, response: Any) -> float | None:
        usage = CallUsage(
            tokens_in=max(0, response.tokens_in - response.cache_read - response.cache_write),
            tokens_out=response.tokens_out,
            cache_read=response.cache_read,
            cache_write=response.cache_write,
        )
        return self.prices.cost(model, usage)

    def _toolbox(self) -> dict[str, Any]:
        if self._tools is None:
            self._tools = build_toolbox(self.snapshot.get("tools") or [], self.settings.tools)
        return self._tools

    async def _fail(self, step: dict[str, Any], reason: str) -> Outcome:
        async with self.db.write() as conn:
            await t.fail_run(conn, self.run_id, self.attempt, step, reason)
        return Outcome.FAILED

    # -- tool calls ----------------------------------------------------------------------------

    async def _resolve_tool_calls(
        self, step: dict[str, Any], transcript: list[Message], toolbox: dict[str, Any]
    ) -> list[ToolResultPart] | None:
        """Results for the last assistant turn's tool calls, or None when the run paused."""
        calls = transcript[-1].tool_calls
        first_seq = sum(len(m.tool_calls) for m in transcript[:-1] if m.role == "assistant")
        async with self.db.read() as conn:
            ledger = await get_step_tool_calls(conn, step["id"])
        results: list[ToolResultPart] = []
        for index, call in enumerate(calls):
            seq = first_seq + index
            outcome = await self._resolve_call(step, seq, call, ledger.get(seq), toolbox)
            if outcome is None:
                return None
            results.append(ToolResultPart(call.id, outcome.content, outcome.is_error))
        return results

    async def _resolve_call(
        self,
        step: dict[str, Any],
        seq: int,
        call: ToolCallPart,
        row: dict[str, Any] | None,
        toolbox: dict[str, Any],
    ) -> ToolOutcome | None:
        if row is not None and row["status"] in ("finished", "answered", "rejected", "unknown"):
            return ToolOutcome(row["result"] or "", bool(row["is_error"]))
        if row is not None and row["status"] == "awaiting":
            return None  # still waiting for a person (a stray wake-up)
        if row is not None and row["status"] == "started":
            async with self.db.write() as conn:
                owned = await t.finish_tool_call(
                    conn,
                    self.run_id,
                    self.attempt,
                    step,
                    row["id"],
                    status="unknown",
                    result=UNKNOWN_OUTCOME,
                    is_error=True,
                )
                if not owned:
                    raise t.LostOwnership(self.run_id)
            return ToolOutcome(UNKNOWN_OUTCOME, is_error=True)

        if call.name == ASK_HUMAN.name and self.hitl.get("ask_questions"):
            question = call.input.get("question")
            if not isinstance(question, str) or not question.strip():
                return ToolOutcome("ask_human needs a non-empty 'question' string.", True)
            await self._pause(step, seq, call, {"kind": "input", "prompt": question})
            return None

        tool = toolbox.get(call.name)
        if tool is None:
            return ToolOutcome(f"Unknown tool '{call.name}'. Use only the tools offered.", True)
        if row is None and call.name in (self.hitl.get("approve_tools") or []):
            pending = {
                "kind": "approval",
                "prompt": summarize_call(call.name, call.input),
                "tool": call.name,
                "tool_input": call.input,
            }
            await self._pause(step, seq, call, pending)
            return None

        async with self.db.write() as conn:
            if row is None:
                row = await t.open_tool_call(
                    conn,
                    self.run_id,
                    self.attempt,
                    step,
                    seq,
                    call.id,
                    call.name,
                    call.input,
                    "started",
                )
            else:  # approved by a person: record that it starts before it does
                await t.start_tool_call(conn, self.run_id, self.attempt, step, row["id"])
        # Started: a cancel or the time limit waits for the outcome, which is recorded even
        # if the run was cancelled meanwhile.
        self._in_tool = True
        try:
            outcome = await self._execute(tool, call, row["id"])
            async with self.db.write() as conn:
                owned = await t.finish_tool_call(
                    conn,
                    self.run_id,
                    self.attempt,
                    step,
                    row["id"],
                    status="finished",
                    result=outcome.content,
                    is_error=outcome.is_error,
                )
        finally:
            self._in_tool = False
        if not owned:
            raise t.LostOwnership(self.run_id)
        self._checkpoint()
        return outcome

    async def _execute(self, tool: Any, call: ToolCallPart, row_id: str) -> ToolOutcome:
        context = ToolContext(idempotency_key=f"loopllama-{row_id}", settings=self.settings.tools)
        with telemetry.tool_call(call.name, call.id, call.input) as probe:
            try:
                outcome = await tool.run(call.input, context)
            except Exception as error:  # a tool bug must not take the run down with it
                log.exception("tool %s raised", call.name)
                outcome = ToolOutcome(f"The tool failed unexpectedly: {type(error).__name__}", True)
            if outcome.is_error:
                probe.outcome = "error"
            telemetry.tool_result(probe, outcome.content)
        if "\x00" in outcome.content:  # e.g. a binary HTTP body: PostgreSQL cannot store NUL
            return ToolOutcome(_no_nul(outcome.content), outcome.is_error)
        return outcome

    async def _pause(
        self, step: dict[str, Any], seq: int, call: ToolCallPart, pending: dict[str, Any]
    ) -> None:
        async with self.db.write() as conn:
            row = await t.open_tool_call(
                conn,
                self.run_id,
                self.attempt,
                step,
                seq,
                call.id,
                call.name,
                call.input,
                "awaiting",
            )
            self.deadline = await t.pause_run(
                conn,
                self.run_id,
                self.attempt,
                pending={**pending, "step_id": step["id"], "call_row_id": row["id"]},
                timeout_seconds=self.hitl.get("timeout_seconds"),
                ran_for=time.monotonic() - self._began,
            )


def _step_spec(run: dict[str, Any], order: int, prior: list[tuple[str, str]]) -> dict[str, Any]:
    """Rule 3's arguments for the step at `order`, after the outputs in `prior`."""
    snapshot = run["snapshot"]
    agent = snapshot["crew"][order]
    return {
        "order": order,
        "role": agent["role"],
        "model": agent.get("model") or snapshot["model"],
        "step_input": step_input(run["input"], prior),
    }


def _first_step(run: dict[str, Any]) -> dict[str, Any]:
    return _step_spec(run, 0, [])


def _tool_input_problem(calls: Any) -> str | None:
    for call in calls:
        if value_depth_exceeds(call.input, MAX_JSON_DEPTH):
            return (
                f"the model called {call.name[:64]} with input nested more than "
                f"{MAX_JSON_DEPTH} levels deep"
            )
    return None


def _storable(response: ModelResponse) -> ModelResponse:
    """The response with NUL characters replaced (U+FFFD): PostgreSQL can store NUL neither in
    text nor in JSON, and a model (or a prompt-injected tool result it echoes) may emit one."""
    if "\\u0000" not in orjson.dumps(response.message.to_json()).decode():
        return response
    parts = tuple(
        replace(part, text=_no_nul(part.text))
        if isinstance(part, TextPart)
        else replace(part, name=_no_nul(part.name), input=_no_nul(part.input))
        if isinstance(part, ToolCallPart)
        else part
        for part in response.message.parts
    )
    return replace(response, message=replace(response.message, parts=parts))


def _no_nul(value: Any) -> Any:
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd")
    if isinstance(value, dict):
        return {_no_nul(key): _no_nul(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_no_nul(item) for item in value]
    return value


def _dump(transcript: list[Message]) -> list[dict[str, Any]]:
    return [m.to_json() for m in transcript]
