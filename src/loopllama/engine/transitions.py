"""The one place that changes run state. Every rule is a function here, in lifecycle order:

    1. create_run      trigger: the run is recorded `queued` with a snapshot of its workflow
                       (or of the version the trigger pins)
    1b. derive_run     retry / fork: a new `queued` run whose first steps are copies of
                       another run's (the source never changes)
    2. claim_run       an engine takes the run over: `running`, and a new attempt number
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
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from loopllama.errors import InvalidRequest, RunFinished, RunNotWaiting
from loopllama.ids import new_id, utcnow
from loopllama.store import statements as sql
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


async def _fence(conn: AsyncConnection, run_id: str, owner: int, **values: Any) -> None:
    """Update the run (possibly with nothing) only while attempt `owner` still owns it."""
    values = values or {"attempt": owner}
    result = await conn.execute(
        update(runs).where(runs.c.id == run_id, runs.c.attempt == owner).values(**values)
    )
    if result.rowcount != 1:
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
    # event: run.queued
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
        "workflow_version": version,
        "forked_from": forked_from,
        "active_seconds": 0.0,
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
    # event: run.queued
    return row


# 2 -------------------------------------------------------------------------------------------


async def claim_run(conn: AsyncConnection, run_id: str) -> dict[str, Any] | None:
    """Take a runnable run over. None when there is nothing to do (paused, finished, gone)."""
    row = (await conn.execute(sql.RUN_BY_ID, {"b_run": run_id})).first()
    if row is None or row.status not in RUNNABLE:
        return None
    run = dict(row._mapping)
    run.update(status="running", attempt=row.attempt + 1, started_at=row.started_at or utcnow())
    await _owned(
        conn,
        sql.RUN_CLAIM,
        {
            "b_run": run_id,
            "b_attempt": row.attempt,
            "b_new_attempt": run["attempt"],
            "b_started_at": run["started_at"],
        },
    )
    return run


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
    await _owned(
        conn,
        sql.RUN_SET_TOTAL_STEPS,
        {"b_run": run_id, "b_attempt": attempt, "b_total_steps": order + 1},
    )
    await conn.execute(sql.STEP_INSERT, row)
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
        await _owned(conn, sql.RUN_ADD_TOKENS_COMPLETE, params)
    else:
        params["b_total_steps"] = next_step["order"] + 1
        await _owned(conn, sql.RUN_ADD_TOKENS_NEXT_STEP, params)
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
    if next_step is None:
        return None
    row = _step_row(run_id, **next_step)
    await conn.execute(sql.STEP_INSERT, row)
    return row


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
    await _fence(
        conn,
        run_id,
        attempt,
        status="waiting_input",
        pending=pending,
        pause_deadline=deadline,
        active_seconds=runs.c.active_seconds + ran_for,
    )
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
    result = await conn.execute(
        update(runs)
        .where(runs.c.id == run["id"], runs.c.status == "waiting_input")
        .values(status="running", pending=None, pause_deadline=None)
    )
    if result.rowcount != 1:
        raise RunNotWaiting()
    if action == "input":
        await _decide_call(conn, pending, "answered", answer or "", is_error=False)
    elif action == "approve":
        await _decide_call(conn, pending, "approved", None, is_error=False)
    else:
        await _decide_call(conn, pending, "rejected", declined_message(reason), is_error=True)


def declined_message(reason: str | None) -> str:
    message = "The human reviewer declined this action; it was not performed."
    return f"{message} Reason: {reason}" if reason else message


async def _decide_call(
    conn: AsyncConnection,
    pending: dict[str, Any],
    status: str,
    result: str | None,
    *,
    is_error: bool,
) -> None:
    await conn.execute(
        update(tool_calls)
        .where(tool_calls.c.id == pending["call_row_id"], tool_calls.c.status == "awaiting")
        .values(status=status, result=result, is_error=is_error)
    )


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
        await _fail(conn, run_id, step.order, step.role, step.id, why)
        await _decide_call(conn, row.pending, "rejected", f"Declined: {why}.", is_error=True)
        return "failed"
    await conn.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.status == "waiting_input")
        .values(status="running", pending=None, pause_deadline=None)
    )
    if row.pending["kind"] == "input":
        result = f"No answer: {why}. Continue without it."
    else:
        result = f"Declined automatically: {why}. The action was not performed."
    await _decide_call(conn, row.pending, "rejected", result, is_error=True)
    return "rejected"


# 9 -------------------------------------------------------------------------------------------


async def complete_run(conn: AsyncConnection, run_id: str, attempt: int, output: str) -> None:
    await _fence(conn, run_id, attempt, status="completed", output=output, finished_at=utcnow())


# 10 ------------------------------------------------------------------------------------------


async def fail_run(
    conn: AsyncConnection, run_id: str, attempt: int | None, step: dict[str, Any], reason: str
) -> None:
    """Fail the step and its run. `attempt` None: not fenced (a decision, not an engine's)."""
    if attempt is not None:
        await _fence(conn, run_id, attempt)
    await _fail(conn, run_id, step["order"], step["role"], step["id"], reason)


async def _fail(
    conn: AsyncConnection, run_id: str, order: int, role: str, step_id: str, reason: str
) -> None:
    now = utcnow()
    await conn.execute(
        update(steps)
        .where(steps.c.id == step_id)
        .values(error=reason, output=None, finished_at=now)
    )
    await conn.execute(
        update(runs)
        .where(runs.c.id == run_id)
        .values(
            status="failed",
            output=None,
            error=f"Step {order + 1} ({role}) failed: {reason}",
            finished_at=now,
            pending=None,
            pause_deadline=None,
        )
    )


async def fail_run_without_step(conn: AsyncConnection, run_id: str, reason: str) -> None:
    """Last resort for a run that cannot even start a step (e.g. an internal error)."""
    await conn.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.status.not_in(tuple(TERMINAL)))
        .values(status="failed", output=None, error=reason, finished_at=utcnow(), pending=None)
    )


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
    result = await conn.execute(
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
    )
    if result.rowcount != 1:
        raise RunFinished()
    await conn.execute(
        update(steps)
        .where(steps.c.run_id == run_id, steps.c.finished_at.is_(None))
        .values(error="cancelled", output=None, finished_at=now)
    )
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
    # event: run.cancelled


# Tool-call ledger (at most once) -------------------------------------------------------------


async def open_tool_call(
    conn: AsyncConnection,
    run_id: str,
    attempt: int,
    step_id: str,
    seq: int,
    call_id: str,
    name: str,
    tool_input: dict[str, Any],
    status: str,
) -> dict[str, Any]:
    """Record a tool call before anything happens: `awaiting` a human, or `started`."""
    await _fence(conn, run_id, attempt)
    now = utcnow()
    row = {
        "id": new_id(),
        "run_id": run_id,
        "step_id": step_id,
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
    return row


async def start_tool_call(conn: AsyncConnection, run_id: str, attempt: int, row_id: str) -> None:
    """An approved call is about to run: from here on a crash leaves its outcome unknown."""
    await _fence(conn, run_id, attempt)
    await conn.execute(
        update(tool_calls)
        .where(tool_calls.c.id == row_id)
        .values(status="started", started_at=utcnow())
    )


async def finish_tool_call(
    conn: AsyncConnection,
    run_id: str,
    attempt: int,
    row_id: str,
    *,
    status: str,
    result: str,
    is_error: bool,
) -> bool:
    """Record a tool call's outcome; False when the run is no longer ours.

    The outcome is recorded even then (the caller commits, then stops): a run cancelled while
    its tool ran keeps what the tool did. A newer owner that already declared the call's
    outcome unknown is not contradicted (only a `started` call is updated)."""
    await conn.execute(
        update(tool_calls)
        .where(tool_calls.c.id == row_id, tool_calls.c.status == "started")
        .values(status=status, result=result, is_error=is_error, finished_at=utcnow())
    )
    result_row = await conn.execute(
        update(runs).where(runs.c.id == run_id, runs.c.attempt == attempt).values(attempt=attempt)
    )
    return result_row.rowcount == 1


async def count_runs(conn: AsyncConnection, status: str) -> int:
    return await conn.scalar(select(func.count()).select_from(runs).where(runs.c.status == status))
