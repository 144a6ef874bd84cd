"""The one place that changes run state. Every rule is a function here, in lifecycle order:

    1. create_run      trigger: the run is recorded `queued` with a snapshot of its workflow
                       (or of the version the trigger pins)
    1b. derive_run     retry / fork: a new `queued` run whose first steps are copies of
                       another run's (the source never changes)
    2. claim_run       an engine takes the run over: `running`, and a new attempt number
                       (claim_and_start: a fresh run's first step starts in the same UPDATE)
    3. start_step      a step row is recorded (once per crew position) with its input
    4. record_turn     after each model call: transcript, tokens, cost, number of calls
    4b. over_budget    after each model call: has the run spent its max_tokens or
                       max_cost_usd? (then fail_run, and no further model call)
    5. close_step      the step's last model call and output; in the same transaction the next
                       step starts, or the run completes when it was the last
    6. pause_run       `running` -> `waiting_input` with a `pending` request
    7. respond         `waiting_input` -> `running` with the human's answer (one caller wins)
    8. expire_pause    nobody answered in time: reject, or fail the run
    9. complete_run    `completed`, output = the last step's output (when close_step could not)
   10. fail_run        `failed`, with "Step N (role) failed: reason"
   11. cancel_run      `queued` / `running` / `waiting_input` -> `cancelled`; bumps the attempt,
                       so the engine holding the run loses it at its next write

Writes made by an engine are fenced on the run's `attempt`: a process that was presumed dead,
and whose run another process has claimed since, gets `LostOwnership` instead of overwriting
newer progress. Each function runs inside the caller's transaction (`conn`).

Each rule also appends the events it causes to the run's log (engine/events.py), in the same
transaction and under the same fence: `run.started` (2), `step.started` (3, 5),
`step.completed` (5), `tool_call.updated` (ledger, 7, 8), `run.waiting_input` (6),
`run.resumed` (7, 8), `run.completed` (5, 9), `step.failed` / `run.failed` (8, 10). A new rule
emits through `append_events` (see there).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from loopllama import telemetry
from loopllama.engine import events, runlog
from loopllama.errors import InvalidRequest, RunFinished, RunNotWaiting
from loopllama.ids import new_id, utcnow
from loopllama.store import statements as sql
from loopllama.store.statements import RUN_EVENT_COLUMNS
from loopllama.store.tables import runs, steps, tool_calls
from loopllama.store.workflows import definition_of

TERMINAL = frozenset({"completed", "failed", "cancelled"})
RUNNABLE = frozenset({"queued", "running"})
CANCELLABLE = ("queued", "running", "waiting_input")


class LostOwnership(Exception):
    """Another engine claimed this run after us; stop touching it."""


async def _owned(conn: AsyncConnection, statement: Any, params: dict[str, Any]) -> None:
    """Run a pre-built fenced run update (store/statements.py); no row: ownership is lost."""
    result = await conn.execute(statement, params)
    if result.rowcount != 1:
        raise LostOwnership(params["b_run"])


async def _owned_row(conn: AsyncConnection, statement: Any, params: dict[str, Any]) -> Any:
    """`_owned` for an update that returns the run (its event counter, or the whole run)."""
    row = (await conn.execute(statement, params)).first()
    if row is None:
        raise LostOwnership(params["b_run"])
    return row


async def _fence(
    conn: AsyncConnection, run_id: str, owner: int, *, reports: int = 0, **values: Any
) -> Any:
    """Update the run (possibly with nothing) only while attempt `owner` still owns it, and
    reserve `reports` event ids. Returns the run as its events show it."""
    values = values or {"attempt": owner}
    if reports:
        values["last_event_id"] = runs.c.last_event_id + reports
    row = (
        await conn.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.attempt == owner)
            .values(**values)
            .returning(*RUN_EVENT_COLUMNS)
        )
    ).first()
    if row is None:
        raise LostOwnership(run_id)
    return row


async def append_events(
    conn: AsyncConnection, run_id: str, *reported: events.Event, attempt: int | None = None
) -> None:
    """Append events to the run's log in this transaction, e.g. from a new rule:

        await append_events(conn, run_id, ("run.cancelled", events.run_data(run_row)))

    `attempt` fences the write (an engine's rule: `LostOwnership` when another attempt owns
    the run); leave it None for a decision that its own conditional UPDATE already arbitrated
    (respond, cancel). Hot rules reserve ids inside the UPDATE they make anyway instead.
    """
    if await events.append(conn, run_id, reported, attempt=attempt) is None:
        raise LostOwnership(run_id)


# 1 -------------------------------------------------------------------------------------------


async def create_run(
    conn: AsyncConnection,
    account_id: str,
    workflow: dict[str, Any],
    run_input: str,
    *,
    version: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Record a `queued` run of `workflow` as it is now, or of `version` (a workflow_versions
    row) when the trigger pins one."""
    if version is None:
        snapshot, number = definition_of(workflow), workflow["version"]
    else:
        snapshot, number = dict(version["definition"]), version["version"]
    row = _run_row(account_id, workflow["id"], run_input, snapshot, number, run_id=run_id)
    await conn.execute(sql.RUN_INSERT, row)
    await events.write(conn, row["id"], 1, [("run.queued", events.run_data(row))])
    runlog.changed(row, "queued")
    return row


def _run_row(
    account_id: str,
    workflow_id: str,
    run_input: str,
    snapshot: dict[str, Any],
    version: int | None,
    *,
    run_id: str | None = None,
    forked_from: dict[str, Any] | None = None,
) -> dict[str, Any]:
    return {
        "id": run_id or new_id(),
        "account_id": account_id,
        "workflow_id": workflow_id,
        "status": "queued",
        "input": run_input,
        "output": None,
        "error": None,
        "total_steps": 0,
        "tokens_in": 0,
        "tokens_out": 0,
        "started_at": None,
        "finished_at": None,
        "created_at": utcnow(),
        "snapshot": snapshot,
        "pending": None,
        "pause_deadline": None,
        "attempt": 0,
        "last_event_id": 1,
        "workflow_version": version,
        "forked_from": forked_from,
        "active_seconds": 0.0,
        "trace_context": telemetry.traceparent(),
        "cost_usd": None,
    }


# Tool calls whose outcome a derived run reuses ("started": declared unknown, never repeated).
_OUTCOMES = ("finished", "answered", "rejected", "unknown", "started")


# 1b ------------------------------------------------------------------------------------------


async def derive_run(
    conn: AsyncConnection,
    source: dict[str, Any],
    source_steps: list[dict[str, Any]],
    source_calls: list[dict[str, Any]],
    *,
    from_step: int,
    run_input: str,
    snapshot: dict[str, Any],
    version: int | None,
    resume: bool = False,
) -> dict[str, Any]:
    """A new `queued` run (retry or fork) of the source's workflow whose steps `0..from_step-1`
    are copies of the source's (`forked`: outputs reused, never called again) and which
    executes from step `from_step`. The source run is only read.

    `resume` (a retry): the source's step `from_step`, which did not complete, is carried over
    as an unfinished step with its conversation and its tool-call ledger, so the new run
    continues it where it stood: a tool call that finished there is not made again.
    """
    copied = [step for step in source_steps if step["order"] < from_step]
    partial = [s for s in source_steps if s["order"] == from_step] if resume else []
    row = _run_row(
        source["account_id"],
        source["workflow_id"],
        run_input,
        snapshot,
        version,
        forked_from={"run_id": source["id"], "from_step": from_step},
    )
    carried = [*copied, *partial]
    row.update(
        total_steps=len(carried),
        tokens_in=sum(step["tokens_in"] for step in carried),
        tokens_out=sum(step["tokens_out"] for step in carried),
        cost_usd=add_cost(None, *(step.get("cost_usd") for step in carried)),
    )
    await conn.execute(sql.RUN_INSERT, row)
    new_step_ids: dict[str, str] = {}
    for step in carried:
        new_step_ids[step["id"]] = new_id()
        copy = {**step, "id": new_step_ids[step["id"]], "run_id": row["id"]}
        if step["order"] < from_step:
            copy["forked"] = True
        else:  # the step to continue: unfinished, with a fresh budget of model calls
            copy.update(forked=False, error=None, output=None, finished_at=None, model_calls=0)
        await conn.execute(sql.STEP_INSERT, copy)
    for call in source_calls:
        # Outcomes only: a call still waiting for (or holding) a human's approval is asked
        # for again in the new run, never run on the source's approval.
        if call["step_id"] in new_step_ids and call["status"] in _OUTCOMES:
            await conn.execute(
                tool_calls.insert().values(
                    **{
                        **call,
                        "id": new_id(),
                        "run_id": row["id"],
                        "step_id": new_step_ids[call["step_id"]],
                    }
                )
            )
    await events.write(conn, row["id"], 1, [("run.queued", events.run_data(row))])
    runlog.changed(row, "queued")
    return row


# 2 -------------------------------------------------------------------------------------------


async def claim_run(conn: AsyncConnection, run_id: str) -> dict[str, Any] | None:
    """Take a runnable run over. None when there is nothing to do (paused, finished, gone)."""
    claimed = await claim_and_start(conn, run_id, None)
    return None if claimed is None else claimed[0]


async def claim_and_start(
    conn: AsyncConnection,
    run_id: str,
    first_step: Callable[[dict[str, Any]], dict[str, Any]] | None,
) -> tuple[dict[str, Any], dict[str, Any] | None] | None:
    """`claim_run`, and for a fresh run (no step yet) rule 3 for its first step in the same
    UPDATE: `first_step(run)` gives the step's order, role, model and step_input. Returns the
    run and that step (None when the run had steps already, or no `first_step`)."""
    row = (await conn.execute(sql.RUN_BY_ID, {"b_run": run_id})).first()
    if row is None or row.status not in RUNNABLE:
        return None
    run = dict(row._mapping)
    run.update(status="running", attempt=row.attempt + 1, started_at=row.started_at or utcnow())
    params = {
        "b_run": run_id,
        "b_attempt": row.attempt,
        "b_new_attempt": run["attempt"],
        "b_started_at": run["started_at"],
    }
    reported = [("run.started", events.run_data(run))]
    step = None
    if first_step is None or row.total_steps:
        counter = await _owned_row(conn, sql.RUN_CLAIM, params)
    else:
        counter = await _owned_row(conn, sql.RUN_CLAIM_FIRST_STEP, params)
        step = _step_row(run_id, **first_step(run))
        run["total_steps"] = 1
        await conn.execute(sql.STEP_INSERT, step)
        reported.append(("step.started", events.step_data(step)))
    await events.write(conn, run_id, counter.last_event_id, reported, hooked=counter.hooked)
    runlog.changed(run, "running", attempt=run["attempt"])
    if step is not None:
        runlog.progress(run_id, step=(step["order"], step["role"]))
    return run, step


# 3 -------------------------------------------------------------------------------------------


async def start_step(
    conn: AsyncConnection,
    run_id: str,
    attempt: int,
    *,
    order: int,
    role: str,
    model: str,
    step_input: str,
) -> dict[str, Any]:
    row = _step_row(run_id, order=order, role=role, model=model, step_input=step_input)
    counter = await _owned_row(
        conn,
        sql.RUN_START_STEP,
        {"b_run": run_id, "b_attempt": attempt, "b_total_steps": order + 1},
    )
    await conn.execute(sql.STEP_INSERT, row)
    started = [("step.started", events.step_data(row))]
    await events.write(conn, run_id, counter.last_event_id, started, hooked=counter.hooked)
    runlog.progress(run_id, step=(order, role))
    return row


def _step_row(run_id: str, *, order: int, role: str, model: str, step_input: str) -> dict[str, Any]:
    return {
        "id": new_id(),
        "run_id": run_id,
        "order": order,
        "role": role,
        "model": model,
        "input": step_input,
        "output": None,
        "error": None,
        "tokens_in": 0,
        "tokens_out": 0,
        "started_at": utcnow(),
        "finished_at": None,
        "transcript": [],
        "model_calls": 0,
        "forked": False,
        "cost_usd": None,
    }


# 4 -------------------------------------------------------------------------------------------


async def record_turn(
    conn: AsyncConnection,
    run_id: str,
    attempt: int,
    step: dict[str, Any],
    *,
    transcript: list[dict[str, Any]],
    tokens_in: int = 0,
    tokens_out: int = 0,
    model_call: bool = False,
    cost: float | None = None,
) -> None:
    """Persist the step's conversation so far (and the tokens and dollars of the call that
    extended it; `cost` None: unknown price)."""
    await _owned(
        conn,
        sql.RUN_ADD_TOKENS,
        {
            "b_run": run_id,
            "b_attempt": attempt,
            "b_tokens_in": tokens_in,
            "b_tokens_out": tokens_out,
            "b_cost": cost,
        },
    )
    runlog.progress(run_id, tokens_in=tokens_in, tokens_out=tokens_out)
    step["transcript"] = transcript
    step["tokens_in"] += tokens_in
    step["tokens_out"] += tokens_out
    step["model_calls"] += int(model_call)
    step["cost_usd"] = add_cost(step.get("cost_usd"), cost)
    await conn.execute(sql.STEP_RECORD_TURN, _step_params(step))


def add_cost(total: float | None, *costs: float | None) -> float | None:
    """Sum of the known costs; None only while none is known."""
    for cost in costs:
        if cost is not None:
            total = cost if total is None else total + cost
    return total


# 4b ------------------------------------------------------------------------------------------


def over_budget(snapshot: dict[str, Any], tokens: int, cost: float | None) -> str | None:
    """The failure reason when a run that has used `tokens` (in + out) and `cost` dollars is
    over its workflow's budget, else None. Checked after every model call; reaching the
    budget exactly is still within it."""
    max_tokens = snapshot.get("max_tokens")
    if max_tokens is not None and tokens > max_tokens:
        return f"run exceeded its budget of {max_tokens} tokens"
    max_cost = snapshot.get("max_cost_usd")
    if max_cost is not None and cost is not None and cost > max_cost:
        return f"run exceeded its budget of ${_dollar_text(max_cost)}"
    return None


def _dollar_text(amount: float) -> str:
    """`0.5` -> `0.50`, `2` -> `2.00`, `0.005` -> `0.005`: cents at least, never `1e-05`."""
    text = f"{amount:.6f}".rstrip("0")
    whole, _, cents = text.partition(".")
    return f"{whole}.{cents.ljust(2, '0')}"


def _step_params(step: dict[str, Any]) -> dict[str, Any]:
    return {
        "b_step": step["id"],
        "b_transcript": step["transcript"],
        "b_tokens_in": step["tokens_in"],
        "b_tokens_out": step["tokens_out"],
        "b_model_calls": step["model_calls"],
        "b_step_cost": step.get("cost_usd"),
        "b_output": step["output"],
        "b_finished_at": step["finished_at"],
    }


# 5 -------------------------------------------------------------------------------------------


async def close_step(
    conn: AsyncConnection,
    run_id: str,
    attempt: int,
    step: dict[str, Any],
    *,
    transcript: list[dict[str, Any]],
    tokens_in: int,
    tokens_out: int,
    output: str,
    next_step: dict[str, Any] | None,
    cost: float | None = None,
) -> dict[str, Any] | None:
    """Record the step's final model call and its output, then start `next_step` (order,
    role, model, step_input), or complete the run with `output` when there is none. One
    transaction per step boundary: the common path of a run costs three statements a step."""
    now = utcnow()
    params: dict[str, Any] = {
        "b_run": run_id,
        "b_attempt": attempt,
        "b_tokens_in": tokens_in,
        "b_tokens_out": tokens_out,
        "b_cost": cost,
    }
    if next_step is None:
        params.update(b_output=output, b_finished_at=now)
        run = await _owned_row(conn, sql.RUN_ADD_TOKENS_COMPLETE, params)
    else:
        params["b_total_steps"] = next_step["order"] + 1
        run = await _owned_row(conn, sql.RUN_ADD_TOKENS_NEXT_STEP, params)
    step.update(
        transcript=transcript,
        tokens_in=step["tokens_in"] + tokens_in,
        tokens_out=step["tokens_out"] + tokens_out,
        model_calls=step["model_calls"] + 1,
        cost_usd=add_cost(step.get("cost_usd"), cost),
        output=output,
        finished_at=now,
    )
    await conn.execute(sql.STEP_CLOSE, _step_params(step))
    completed = ("step.completed", events.step_data(step, await _calls_of(conn, step)))
    runlog.progress(run_id, tokens_in=tokens_in, tokens_out=tokens_out)
    if next_step is None:
        reported = [completed, _run_event(run)]
        await events.write(conn, run_id, run.last_event_id, reported, hooked=run.hooked)
        runlog.changed(run_id, "completed")
        return None
    row = _step_row(run_id, **next_step)
    await conn.execute(sql.STEP_INSERT, row)
    started = ("step.started", events.step_data(row))
    await events.write(conn, run_id, run.last_event_id, [completed, started], hooked=run.hooked)
    runlog.progress(run_id, step=(next_step["order"], next_step["role"]))
    return row


async def _calls_of(conn: AsyncConnection, step: dict[str, Any]) -> list[dict[str, Any]]:
    """The step's tool calls, read only when its transcript shows it made some."""
    if not any(
        part.get("type") == "tool_call"
        for message in step["transcript"]
        if message.get("role") == "assistant"
        for part in message.get("parts", ())
    ):
        return []
    rows = await conn.execute(
        select(tool_calls).where(tool_calls.c.step_id == step["id"]).order_by(tool_calls.c.seq)
    )
    return [dict(r._mapping) for r in rows]


def _run_event(run: Any) -> events.Event:
    """The event of a run's status, with the run as it now is: `run.<status>`."""
    return (f"run.{run.status}", events.run_data(run))


# 6 -------------------------------------------------------------------------------------------


async def pause_run(
    conn: AsyncConnection,
    run_id: str,
    attempt: int,
    *,
    pending: dict[str, Any],
    timeout_seconds: int | None,
    ran_for: float = 0.0,
) -> datetime | None:
    """Park the run on a question or an approval; returns when the pause gives up, if ever.
    `ran_for`: seconds this pass spent running (the time limit does not count pauses)."""
    deadline = utcnow() + timedelta(seconds=timeout_seconds) if timeout_seconds else None
    if deadline is not None:
        pending = {**pending, "expires_at": deadline.isoformat()}
    run = await _fence(
        conn,
        run_id,
        attempt,
        reports=1,
        status="waiting_input",
        pending=pending,
        pause_deadline=deadline,
        active_seconds=runs.c.active_seconds + ran_for,
    )
    await events.write(conn, run_id, run.last_event_id, [_run_event(run)])
    runlog.changed(run_id, "waiting_input", waiting_for=pending.get("kind"))
    return deadline


# 7 -------------------------------------------------------------------------------------------


async def respond(
    conn: AsyncConnection,
    run: dict[str, Any],
    *,
    action: str,
    answer: str | None,
    reason: str | None,
) -> None:
    """Apply a human's answer to a paused run. Exactly one of racing callers succeeds."""
    pending = run["pending"]
    if run["status"] != "waiting_input" or not pending:
        raise RunNotWaiting()
    expected = {"input": ("input",), "approval": ("approve", "reject")}[pending["kind"]]
    if action not in expected:
        raise InvalidRequest(
            f"Action '{action}' does not match the pending request of kind "
            f"'{pending['kind']}' (expected {' or '.join(repr(a) for a in expected)})"
        )
    # The conditional update is the arbiter: a second respond finds the run no longer waiting.
    row = await _resume(conn, run["id"])
    if row is None:
        raise RunNotWaiting()
    runlog.changed(run, "running", answer=action)
    if action == "input":
        call = await _decide_call(conn, pending, "answered", answer or "", is_error=False)
    elif action == "approve":
        call = await _decide_call(conn, pending, "approved", None, is_error=False)
    else:
        call = await _decide_call(conn, pending, "rejected", declined_message(reason), True)
    await _report_resume(conn, row, call, {"action": action})


async def _resume(conn: AsyncConnection, run_id: str) -> Any:
    """`waiting_input` -> `running`, reserving ids for tool_call.updated and run.resumed."""
    return (
        await conn.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.status == "waiting_input")
            .values(
                status="running",
                pending=None,
                pause_deadline=None,
                last_event_id=runs.c.last_event_id + 2,
            )
            .returning(*RUN_EVENT_COLUMNS)
        )
    ).first()


async def _report_resume(
    conn: AsyncConnection, run: Any, call: tuple[str, int, dict[str, Any]], data: dict[str, Any]
) -> None:
    step_id, order, row = call
    reported = [
        ("tool_call.updated", events.tool_call_data(step_id, order, row)),
        ("run.resumed", {**data, "run": events.run_data(run)}),
    ]
    await events.write(conn, run.id, run.last_event_id, reported)


def declined_message(reason: str | None) -> str:
    message = "The human reviewer declined this action; it was not performed."
    return f"{message} Reason: {reason}" if reason else message


async def _decide_call(
    conn: AsyncConnection,
    pending: dict[str, Any],
    status: str,
    result: str | None,
    is_error: bool,
) -> tuple[str, int, dict[str, Any]]:
    """Record a person's (or the clock's) decision; returns (step_id, order, call row)."""
    await conn.execute(
        update(tool_calls)
        .where(tool_calls.c.id == pending["call_row_id"], tool_calls.c.status == "awaiting")
        .values(status=status, result=result, is_error=is_error)
    )
    row = (
        await conn.execute(select(tool_calls).where(tool_calls.c.id == pending["call_row_id"]))
    ).first()
    order = await conn.scalar(select(steps.c.order).where(steps.c.id == row.step_id))
    return row.step_id, order, dict(row._mapping)


# 8 -------------------------------------------------------------------------------------------


async def expire_pause(conn: AsyncConnection, run_id: str, now: datetime) -> str | None:
    """Decide a pause nobody answered in time. Returns "rejected", "failed" or None (no-op)."""
    row = (await conn.execute(select(runs).where(runs.c.id == run_id))).first()
    if row is None or row.status != "waiting_input" or row.pause_deadline is None:
        return None
    deadline = row.pause_deadline
    if deadline.tzinfo is None:  # SQLite returns naive UTC
        deadline = deadline.replace(tzinfo=now.tzinfo)
    if deadline > now:
        return None
    hitl = row.snapshot.get("human_in_the_loop") or {}
    seconds = hitl.get("timeout_seconds")
    why = f"no human response within {seconds} seconds"
    if hitl.get("on_timeout", "reject") == "fail":
        step = (
            await conn.execute(select(steps).where(steps.c.id == row.pending["step_id"]))
        ).first()
        step_id, order, call = await _decide_call(
            conn, row.pending, "rejected", f"Declined: {why}.", True
        )
        decided = ("tool_call.updated", events.tool_call_data(step_id, order, call))
        await _fail(conn, run_id, None, dict(step._mapping), why, first=decided)
        return "failed"
    resumed = await _resume(conn, run_id)
    if resumed is None:
        return None
    if row.pending["kind"] == "input":
        result = f"No answer: {why}. Continue without it."
    else:
        result = f"Declined automatically: {why}. The action was not performed."
    call = await _decide_call(conn, row.pending, "rejected", result, True)
    await _report_resume(conn, resumed, call, {"action": "reject", "expired": True})
    runlog.changed(dict(row._mapping), "running", answer="timed_out")
    return "rejected"


# 9 -------------------------------------------------------------------------------------------


async def complete_run(conn: AsyncConnection, run_id: str, attempt: int, output: str) -> None:
    run = await _fence(
        conn, run_id, attempt, reports=1, status="completed", output=output, finished_at=utcnow()
    )
    await events.write(conn, run_id, run.last_event_id, [_run_event(run)])
    runlog.changed(run_id, "completed")


# 10 ------------------------------------------------------------------------------------------


async def fail_run(
    conn: AsyncConnection, run_id: str, attempt: int | None, step: dict[str, Any], reason: str
) -> None:
    """Fail the step and its run. `attempt` None: not fenced (a decision, not an engine's)."""
    await _fail(conn, run_id, attempt, step, reason)


async def _fail(
    conn: AsyncConnection,
    run_id: str,
    attempt: int | None,
    step: dict[str, Any],
    reason: str,
    *,
    first: events.Event | None = None,
) -> None:
    """Fail the run (fenced on `attempt` when given) and its step: step.failed, run.failed
    (after `first`, an event of the same decision)."""
    now = utcnow()
    fence = [runs.c.attempt == attempt] if attempt is not None else []
    run = (
        await conn.execute(
            update(runs)
            .where(runs.c.id == run_id, *fence)
            .values(
                status="failed",
                output=None,
                error=f"Step {step['order'] + 1} ({step['role']}) failed: {reason}",
                finished_at=now,
                pending=None,
                pause_deadline=None,
                last_event_id=runs.c.last_event_id + (3 if first else 2),
            )
            .returning(*RUN_EVENT_COLUMNS)
        )
    ).first()
    if run is None:
        raise LostOwnership(run_id)
    await conn.execute(
        update(steps)
        .where(steps.c.id == step["id"])
        .values(error=reason, output=None, finished_at=now)
    )
    failed = {**step, "error": reason, "output": None, "finished_at": now}
    reported = [] if first is None else [first]
    reported += [("step.failed", events.step_data(failed, await _calls_of(conn, failed)))]
    reported.append(_run_event(run))
    await events.write(conn, run_id, run.last_event_id, reported)
    runlog.changed(run_id, "failed", step=f"{step['order'] + 1}/{step['role']}", error=reason)


async def fail_run_without_step(conn: AsyncConnection, run_id: str, reason: str) -> None:
    """Last resort for a run that cannot even start a step (e.g. an internal error)."""
    run = (
        await conn.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.status.not_in(tuple(TERMINAL)))
            .values(
                status="failed",
                output=None,
                error=reason,
                finished_at=utcnow(),
                pending=None,
                last_event_id=runs.c.last_event_id + 1,
            )
            .returning(*RUN_EVENT_COLUMNS)
        )
    ).first()
    if run is not None:
        await events.write(conn, run_id, run.last_event_id, [_run_event(run)])
        runlog.changed(run_id, "failed", error=reason)


# 11 ------------------------------------------------------------------------------------------


async def cancel_run(conn: AsyncConnection, run_id: str) -> None:
    """Cancel an unfinished run. Exactly one of a cancel and a racing respond, completion or
    failure wins: each is a conditional update of the run row (the loser finds it changed).

    The attempt is bumped, so the engine holding the run (in any process) gets
    `LostOwnership` at its next write: no further step, model call or tool call starts. The
    step in progress ends with `error: "cancelled"`; a pending question or approval is
    dropped (its tool call never runs).
    """
    now = utcnow()
    run = (
        await conn.execute(
            update(runs)
            .where(runs.c.id == run_id, runs.c.status.in_(CANCELLABLE))
            .values(
                status="cancelled",
                output=None,
                error=None,
                finished_at=now,
                pending=None,
                pause_deadline=None,
                attempt=runs.c.attempt + 1,
            )
            .returning(*RUN_EVENT_COLUMNS)
        )
    ).first()
    if run is None:
        raise RunFinished()
    ended = (
        await conn.execute(
            update(steps)
            .where(steps.c.run_id == run_id, steps.c.finished_at.is_(None))
            .values(error="cancelled", output=None, finished_at=now)
            .returning(*steps.c)
        )
    ).all()
    await conn.execute(
        update(tool_calls)
        .where(tool_calls.c.run_id == run_id, tool_calls.c.status == "awaiting")
        .values(
            status="dropped",
            result="The run was cancelled before anyone answered.",
            is_error=True,
            finished_at=now,
        )
    )
    reported: list[events.Event] = []
    for row in sorted(ended, key=lambda r: r.order):
        step = dict(row._mapping)
        reported.append(("step.failed", events.step_data(step, await _calls_of(conn, step))))
    reported.append(_run_event(run))
    await append_events(conn, run_id, *reported)
    runlog.changed(run_id, "cancelled")


# Tool-call ledger (at most once) -------------------------------------------------------------


async def open_tool_call(
    conn: AsyncConnection,
    run_id: str,
    attempt: int,
    step: dict[str, Any],
    seq: int,
    call_id: str,
    name: str,
    tool_input: dict[str, Any],
    status: str,
) -> dict[str, Any]:
    """Record a tool call before anything happens: `awaiting` a human, or `started`."""
    run = await _fence(conn, run_id, attempt, reports=1)
    now = utcnow()
    row = {
        "id": new_id(),
        "run_id": run_id,
        "step_id": step["id"],
        "seq": seq,
        "call_id": call_id[:200],
        "name": name,
        "input": tool_input,
        "status": status,
        "result": None,
        "is_error": False,
        "created_at": now,
        "started_at": now if status == "started" else None,
        "finished_at": None,
    }
    await conn.execute(tool_calls.insert().values(**row))
    await _report_call(conn, run, step, row)
    return row


async def start_tool_call(
    conn: AsyncConnection, run_id: str, attempt: int, step: dict[str, Any], row_id: str
) -> None:
    """An approved call is about to run: from here on a crash leaves its outcome unknown."""
    run = await _fence(conn, run_id, attempt, reports=1)
    row = await _update_call(conn, row_id, status="started", started_at=utcnow())
    await _report_call(conn, run, step, row)


async def finish_tool_call(
    conn: AsyncConnection,
    run_id: str,
    attempt: int,
    step: dict[str, Any],
    row_id: str,
    *,
    status: str,
    result: str,
    is_error: bool,
) -> bool:
    """Record a tool call's outcome; False when the run is no longer ours.

    The outcome is recorded even then (the caller commits, then stops): a run cancelled while
    its tool ran keeps what the tool did, but only its owner reports it as an event. A newer
    owner that already declared the call's outcome unknown is not contradicted (only a
    `started` call is updated)."""
    updated = (
        await conn.execute(
            update(tool_calls)
            .where(tool_calls.c.id == row_id, tool_calls.c.status == "started")
            .values(status=status, result=result, is_error=is_error, finished_at=utcnow())
            .returning(*tool_calls.c)
        )
    ).first()
    try:
        run = await _fence(conn, run_id, attempt, reports=1 if updated is not None else 0)
    except LostOwnership:
        return False
    if updated is not None:
        await _report_call(conn, run, step, dict(updated._mapping))
    return True


async def _update_call(conn: AsyncConnection, row_id: str, **values: Any) -> dict[str, Any]:
    row = (
        await conn.execute(
            update(tool_calls)
            .where(tool_calls.c.id == row_id)
            .values(**values)
            .returning(*tool_calls.c)
        )
    ).first()
    return dict(row._mapping)


async def _report_call(
    conn: AsyncConnection, run: Any, step: dict[str, Any], row: dict[str, Any]
) -> None:
    data = events.tool_call_data(step["id"], step["order"], row)
    await events.write(conn, run.id, run.last_event_id, [("tool_call.updated", data)])


async def count_runs(conn: AsyncConnection, status: str) -> int:
    return await conn.scalar(select(func.count()).select_from(runs).where(runs.c.status == status))
