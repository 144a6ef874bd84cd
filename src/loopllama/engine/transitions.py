"""The one place that changes run state. Every rule is a function here, in lifecycle order:

    1. create_run      trigger: the run is recorded `queued` with a snapshot of its workflow
    2. claim_run       an engine takes the run over: `running`, and a new attempt number
    3. start_step      a step row is recorded (once per crew position) with its input
    4. record_turn     after each model call: transcript, tokens, number of calls
    5. close_step      the step's last model call and output; in the same transaction the next
                       step starts, or the run completes when it was the last
    6. pause_run       `running` -> `waiting_input` with a `pending` request
    7. respond         `waiting_input` -> `running` with the human's answer (one caller wins)
    8. expire_pause    nobody answered in time: reject, or fail the run
    9. complete_run    `completed`, output = the last step's output (when close_step could not)
   10. fail_run        `failed`, with "Step N (role) failed: reason"

Writes made by an engine are fenced on the run's `attempt`: a process that was presumed dead,
and whose run another process has claimed since, gets `LostOwnership` instead of overwriting
newer progress. Each function runs inside the caller's transaction (`conn`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from loopllama.engine import runlog
from loopllama.errors import InvalidRequest, RunNotWaiting
from loopllama.ids import new_id, utcnow
from loopllama.store import statements as sql
from loopllama.store.tables import runs, steps, tool_calls

TERMINAL = frozenset({"completed", "failed"})
RUNNABLE = frozenset({"queued", "running"})


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
    conn: AsyncConnection, account_id: str, workflow: dict[str, Any], run_input: str
) -> dict[str, Any]:
    row = {
        "id": new_id(),
        "account_id": account_id,
        "workflow_id": workflow["id"],
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
        "snapshot": {
            "model": workflow["model"],
            "crew": workflow["crew"],
            "human_in_the_loop": workflow["human_in_the_loop"],
            "tools": workflow["tools"],
        },
        "pending": None,
        "pause_deadline": None,
        "attempt": 0,
    }
    await conn.execute(sql.RUN_INSERT, row)
    runlog.changed(row, "queued")
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
    runlog.changed(run, "running", attempt=run["attempt"])
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
) -> None:
    """Persist the step's conversation so far (and the tokens of the call that extended it)."""
    await _owned(
        conn,
        sql.RUN_ADD_TOKENS,
        {
            "b_run": run_id,
            "b_attempt": attempt,
            "b_tokens_in": tokens_in,
            "b_tokens_out": tokens_out,
        },
    )
    runlog.progress(run_id, tokens_in=tokens_in, tokens_out=tokens_out)
    step["transcript"] = transcript
    step["tokens_in"] += tokens_in
    step["tokens_out"] += tokens_out
    step["model_calls"] += int(model_call)
    await conn.execute(sql.STEP_RECORD_TURN, _step_params(step))


def _step_params(step: dict[str, Any]) -> dict[str, Any]:
    return {
        "b_step": step["id"],
        "b_transcript": step["transcript"],
        "b_tokens_in": step["tokens_in"],
        "b_tokens_out": step["tokens_out"],
        "b_model_calls": step["model_calls"],
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
        output=output,
        finished_at=now,
    )
    await conn.execute(sql.STEP_CLOSE, _step_params(step))
    runlog.progress(run_id, tokens_in=tokens_in, tokens_out=tokens_out)
    if next_step is None:
        runlog.changed(run_id, "completed")
        return None
    row = _step_row(run_id, **next_step)
    await conn.execute(sql.STEP_INSERT, row)
    runlog.progress(run_id, step=(next_step["order"], next_step["role"]))
    return row


# 6 -------------------------------------------------------------------------------------------


async def pause_run(
    conn: AsyncConnection,
    run_id: str,
    attempt: int,
    *,
    pending: dict[str, Any],
    timeout_seconds: int | None,
) -> datetime | None:
    """Park the run on a question or an approval; returns when the pause gives up, if ever."""
    deadline = utcnow() + timedelta(seconds=timeout_seconds) if timeout_seconds else None
    if deadline is not None:
        pending = {**pending, "expires_at": deadline.isoformat()}
    await _fence(
        conn, run_id, attempt, status="waiting_input", pending=pending, pause_deadline=deadline
    )
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
    result = await conn.execute(
        update(runs)
        .where(runs.c.id == run["id"], runs.c.status == "waiting_input")
        .values(status="running", pending=None, pause_deadline=None)
    )
    if result.rowcount != 1:
        raise RunNotWaiting()
    runlog.changed(run, "running", answer=action)
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
    runlog.changed(dict(row._mapping), "running", answer="timed_out")
    return "rejected"


# 9 -------------------------------------------------------------------------------------------


async def complete_run(conn: AsyncConnection, run_id: str, attempt: int, output: str) -> None:
    await _fence(conn, run_id, attempt, status="completed", output=output, finished_at=utcnow())
    runlog.changed(run_id, "completed")


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
    runlog.changed(run_id, "failed", step=f"{order + 1}/{role}", error=reason)


async def fail_run_without_step(conn: AsyncConnection, run_id: str, reason: str) -> None:
    """Last resort for a run that cannot even start a step (e.g. an internal error)."""
    await conn.execute(
        update(runs)
        .where(runs.c.id == run_id, runs.c.status.not_in(tuple(TERMINAL)))
        .values(status="failed", output=None, error=reason, finished_at=utcnow(), pending=None)
    )
    runlog.changed(run_id, "failed", error=reason)


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
) -> None:
    await _fence(conn, run_id, attempt)
    await conn.execute(
        update(tool_calls)
        .where(tool_calls.c.id == row_id)
        .values(status=status, result=result, is_error=is_error, finished_at=utcnow())
    )


async def count_runs(conn: AsyncConnection, status: str) -> int:
    return await conn.scalar(select(func.count()).select_from(runs).where(runs.c.status == status))
