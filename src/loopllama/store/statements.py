"""Pre-built statements for the hot paths: every request (the key, the workflow) and the
engine's (claim, step boundaries, model calls).

Building a SQLAlchemy statement and its cache key costs about 100 µs; executing a pre-built one
with bind parameters about 14 µs (measured on SQLite). These run several times per step, so
they are built once here; colder paths build their statements where they are used.

Every run update is fenced: it names the run and the attempt that owns it (`b_run`,
`b_attempt`), and a caller that gets no row back has lost the run to a newer attempt. Those
that report a state change also reserve ids in the run's event log (`last_event_id`, see
engine/events.py) and return the counter, or the whole run when the event shows it.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Float,
    bindparam,
    case,
    cast,
    exists,
    func,
    literal_column,
    or_,
    select,
    update,
)

from loopllama.store.tables import api_keys, runs, steps, tool_calls, workflows

# Expiry is part of the lookup (not a cache), so an expired key fails at once in every process.
KEY_LOOKUP = select(
    api_keys.c.id,
    api_keys.c.account_id,
    api_keys.c.scope,
    api_keys.c.workflow_ids,
    api_keys.c.expires_at,
    api_keys.c.last_used_at,
    api_keys.c.rate_limit,
).where(
    api_keys.c.key_hash == bindparam("b_key_hash"),
    api_keys.c.revoked_at.is_(None),
    or_(api_keys.c.expires_at.is_(None), api_keys.c.expires_at > bindparam("b_now")),
)

# Guarded, so that processes racing to record the same minute write it once.
KEY_TOUCH = (
    update(api_keys)
    .where(
        api_keys.c.id == bindparam("b_key"),
        or_(api_keys.c.last_used_at.is_(None), api_keys.c.last_used_at < bindparam("b_stale")),
    )
    .values(last_used_at=bindparam("b_now"))
)

WORKFLOW_OF_ACCOUNT = select(workflows).where(
    workflows.c.id == bindparam("b_workflow"),
    workflows.c.account_id == bindparam("b_account"),
    workflows.c.deleted_at.is_(None),
)


# The run columns a run event shows, plus the event counter (UPDATE ... RETURNING these).
RUN_EVENT_COLUMNS = (
    runs.c.id,
    runs.c.workflow_id,
    runs.c.status,
    runs.c.input,
    runs.c.output,
    runs.c.error,
    runs.c.total_steps,
    runs.c.tokens_in,
    runs.c.tokens_out,
    runs.c.started_at,
    runs.c.finished_at,
    runs.c.created_at,
    runs.c.pending,
    runs.c.workflow_version,
    runs.c.forked_from,
    runs.c.last_event_id,
)


# Whether the run's account has an enabled webhook endpoint, read by the run's UPDATE (one index
# probe): a write that finds none can skip the webhook outbox's statement. Only on SQLite, whose
# write transactions (BEGIN IMMEDIATE) are serializable: no endpoint can be created between this
# read and the commit. On PostgreSQL the outbox's statement always runs (engine/events.py).
# Spelled out: SQLAlchemy drops the table names in a RETURNING clause on SQLite.
HOOKED = literal_column(
    "EXISTS (SELECT 1 FROM webhook_endpoints WHERE webhook_endpoints.account_id = "
    "runs.account_id AND webhook_endpoints.status = 'enabled')",
    Boolean,
).label("hooked")


def _events(count: int) -> dict:
    return {"last_event_id": runs.c.last_event_id + count}


def _owned_run_update():
    return update(runs).where(
        runs.c.id == bindparam("b_run"), runs.c.attempt == bindparam("b_attempt")
    )


RUN_INSERT = runs.insert()

RUN_BY_ID = select(runs).where(runs.c.id == bindparam("b_run"))

_CLAIM = _owned_run_update().values(
    status="running", attempt=bindparam("b_new_attempt"), started_at=bindparam("b_started_at")
)

RUN_CLAIM = _CLAIM.values(**_events(1)).returning(runs.c.last_event_id, HOOKED)  # run.started

# A fresh run's claim starts its first step too: run.started, step.started.
RUN_CLAIM_FIRST_STEP = _CLAIM.values(total_steps=1, **_events(2)).returning(
    runs.c.last_event_id, HOOKED
)

RUN_START_STEP = (  # step.started
    _owned_run_update()
    .values(total_steps=bindparam("b_total_steps"), **_events(1))
    .returning(runs.c.last_event_id, HOOKED)
)

# A call of unknown price (b_cost null) leaves the run's cost as it is: null until some
# call's price is known, then the sum of the known ones.
_CALL_COST = cast(bindparam("b_cost"), Float)

RUN_ADD_TOKENS = _owned_run_update().values(
    tokens_in=runs.c.tokens_in + bindparam("b_tokens_in"),
    tokens_out=runs.c.tokens_out + bindparam("b_tokens_out"),
    cost_usd=case(
        (_CALL_COST.is_(None), runs.c.cost_usd),
        else_=func.coalesce(runs.c.cost_usd, 0.0) + _CALL_COST,
    ),
)

RUN_ADD_TOKENS_NEXT_STEP = RUN_ADD_TOKENS.values(  # step.completed, step.started
    total_steps=bindparam("b_total_steps"), **_events(2)
).returning(runs.c.last_event_id, HOOKED)

RUN_ADD_TOKENS_COMPLETE = RUN_ADD_TOKENS.values(  # step.completed, run.completed
    status="completed",
    output=bindparam("b_output"),
    finished_at=bindparam("b_finished_at"),
    **_events(2),
).returning(*RUN_EVENT_COLUMNS, HOOKED)

# `GET /v1/runs/{id}`, the route clients poll: the run without its snapshot (tool secrets,
# and large), the steps without their transcripts (the whole model conversation, which the
# API never shows), and whether any step made tool calls, so a run without any skips that
# third statement.
RUN_OF_ACCOUNT = select(*[c for c in runs.c if c.name != "snapshot"]).where(
    runs.c.id == bindparam("b_run"), runs.c.account_id == bindparam("b_account")
)

PUBLIC_STEPS_OF_RUN = (
    select(
        *[c for c in steps.c if c.name != "transcript"],
        exists().where(tool_calls.c.step_id == steps.c.id).correlate(steps).label("has_tool_calls"),
    )
    .where(steps.c.run_id == bindparam("b_run"))
    .order_by(steps.c.order)
)

TOOL_CALLS_OF_RUN = (
    select(tool_calls)
    .where(tool_calls.c.run_id == bindparam("b_run"))
    .order_by(tool_calls.c.step_id, tool_calls.c.seq)
)

STEPS_OF_RUN = select(steps).where(steps.c.run_id == bindparam("b_run")).order_by(steps.c.order)

STEP_INSERT = steps.insert()

STEP_RECORD_TURN = (
    update(steps)
    .where(steps.c.id == bindparam("b_step"))
    .values(
        transcript=bindparam("b_transcript"),
        tokens_in=bindparam("b_tokens_in"),
        tokens_out=bindparam("b_tokens_out"),
        model_calls=bindparam("b_model_calls"),
        cost_usd=bindparam("b_step_cost"),
    )
)

STEP_CLOSE = STEP_RECORD_TURN.values(
    output=bindparam("b_output"), finished_at=bindparam("b_finished_at")
)
