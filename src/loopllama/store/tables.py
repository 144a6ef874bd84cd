"""The tables: the single source of truth for accounts, workflows, runs, steps and tool calls.

Every definition change of a workflow is an immutable `workflow_versions` row; a run records the
version it executes (`workflow_version`). A run carries everything needed to execute it
(`snapshot`: the crew as it was at trigger time)
and to resume it (`pending`, each step's `transcript`, the `tool_calls` ledger), so no process
holds state that the database does not.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB

# Stable constraint names make Alembic migrations reproducible on every backend.
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Json = JSON().with_variant(JSONB(), "postgresql")
Timestamp = DateTime(timezone=True)
Id = String(32)

accounts = Table(
    "accounts",
    metadata,
    Column("id", Id, primary_key=True),
    Column("name", String(120), nullable=False, unique=True),
    Column("created_at", Timestamp, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id, primary_key=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("label", String(200), nullable=True),
    # SHA-256 of the whole key: keys are 256-bit random, so a fast hash is safe and lookups
    # stay one indexed read per request.
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("hint", String(32), nullable=False),  # "ll_live_ab12…": recognisable, not usable
    Column("created_at", Timestamp, nullable=False),
    Column("revoked_at", Timestamp, nullable=True),
    # What the key may do (permissions.py): read < run < admin; keys made before scopes existed
    # could do everything, so they are admin.
    Column("scope", String(8), nullable=False, server_default="admin"),
    # The workflows a limited key sees (a JSON array of ids); NULL: every workflow.
    Column("workflow_ids", Json, nullable=True),
    # Checked in the lookup statement itself, so an expired key fails at once in every process.
    Column("expires_at", Timestamp, nullable=True),
    # Coarse (written at most once a minute per key), never a write per request.
    Column("last_used_at", Timestamp, nullable=True),
    # "N/second|minute|hour": this key's request limit; null takes LOOPLLAMA_RATE_LIMIT.
    Column("rate_limit", String(40), nullable=True),
)

workflows = Table(
    "workflows",
    metadata,
    Column("id", Id, primary_key=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("name", String(120), nullable=False),
    Column("description", Text, nullable=True),
    Column("status", String(16), nullable=False),
    Column("model", String(80), nullable=False),
    Column("crew", Json, nullable=False),
    Column("human_in_the_loop", Json, nullable=True),
    Column("tools", Json, nullable=False),
    Column("max_run_seconds", Integer, nullable=True),  # null: the server's default
    # Run budgets, checked after every model call; null: none.
    Column("max_cost_usd", Float, nullable=True),
    Column("max_tokens", Integer, nullable=True),
    # The current definition's number in `workflow_versions` (1 at create).
    Column("version", Integer, nullable=False, default=1),
    Column("locked", Boolean, nullable=False, default=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    # Deleted workflows vanish from the API but their runs stay retrievable by id.
    Column("deleted_at", Timestamp, nullable=True),
    Index("ix_workflows_account_updated", "account_id", "updated_at"),
)

# What a run executes, one immutable row per definition change (PATCH, restore).
workflow_versions = Table(
    "workflow_versions",
    metadata,
    Column("workflow_id", Id, ForeignKey("workflows.id"), primary_key=True),
    Column("version", Integer, primary_key=True),
    # model, crew, human_in_the_loop, tools, max_run_seconds, max_cost_usd, max_tokens: the
    # fields a run snapshots.
    Column("definition", Json, nullable=False),
    Column("created_at", Timestamp, nullable=False),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Id, primary_key=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("workflow_id", Id, nullable=False),  # no FK: runs outlive their workflow
    Column("status", String(16), nullable=False),
    Column("input", Text, nullable=False),
    Column("output", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("total_steps", Integer, nullable=False, default=0),
    Column("tokens_in", Integer, nullable=False, default=0),
    Column("tokens_out", Integer, nullable=False, default=0),
    Column("started_at", Timestamp, nullable=True),
    Column("finished_at", Timestamp, nullable=True),
    Column("created_at", Timestamp, nullable=False),
    # The workflow as it was when the run was triggered: later edits never reach the run.
    Column("snapshot", Json, nullable=False),
    # What the run waits for while `waiting_input` (the API's `pending`, plus internal keys).
    Column("pending", Json, nullable=True),
    Column("pause_deadline", Timestamp, nullable=True),
    # Bumped by every process that takes the run over: writes are fenced on it.
    Column("attempt", Integer, nullable=False, default=0),
    # The id of the run's last event: bumped in the transaction that appends events, under
    # the same row lock as the state change, so event ids are gapless per run on any backend.
    Column("last_event_id", Integer, nullable=False, default=0, server_default="0"),
    Column("workflow_version", Integer, nullable=True),  # null only for pre-0005 runs
    # {"run_id", "from_step"} for a retry or a fork; null otherwise.
    Column("forked_from", Json, nullable=True),
    # Time spent `running` by earlier passes (a pause ends a pass): the time limit's clock.
    Column("active_seconds", Float, nullable=False, default=0.0),
    # W3C traceparent of the trigger request when traces are on: the worker continues it.
    Column("trace_context", String(64), nullable=True),
    # Dollars: the sum of the steps' known costs; null while no step has a known price.
    Column("cost_usd", Float, nullable=True),
    Index("ix_runs_status", "status"),
    # The run lists (newest first, keyset-paginated on created_at, id), with and without a
    # status filter.
    Index("ix_runs_account_created", "account_id", "created_at", "id"),
    Index("ix_runs_account_status_created", "account_id", "status", "created_at", "id"),
    Index("ix_runs_workflow_created_id", "workflow_id", "created_at", "id"),
    Index("ix_runs_workflow_status_created", "workflow_id", "status", "created_at", "id"),
)

steps = Table(
    "steps",
    metadata,
    Column("id", Id, primary_key=True),
    Column("run_id", Id, ForeignKey("runs.id"), nullable=False),
    Column("order", Integer, nullable=False),
    Column("role", String(60), nullable=False),
    Column("model", String(80), nullable=False),
    Column("input", Text, nullable=False),
    Column("output", Text, nullable=True),
    Column("error", Text, nullable=True),
    Column("tokens_in", Integer, nullable=False, default=0),
    Column("tokens_out", Integer, nullable=False, default=0),
    Column("started_at", Timestamp, nullable=True),
    Column("finished_at", Timestamp, nullable=True),
    # The model conversation after the step input (assistant turns, tool results), persisted
    # after every model call so a paused or interrupted step resumes where it stood.
    Column("transcript", Json, nullable=False),
    Column("model_calls", Integer, nullable=False, default=0),
    # Copied from another run by a retry or a fork: its output is reused, never recomputed.
    Column("forked", Boolean, nullable=False, default=False),
    # Dollars for the step's model calls; null when the model's price is unknown.
    Column("cost_usd", Float, nullable=True),
    UniqueConstraint("run_id", "order", name="uq_steps_run_order"),
)

tool_calls = Table(
    "tool_calls",
    metadata,
    Column("id", Id, primary_key=True),
    Column("run_id", Id, ForeignKey("runs.id"), nullable=False),
    Column("step_id", Id, ForeignKey("steps.id"), nullable=False),
    Column("seq", Integer, nullable=False),  # position of the call within its step
    Column("call_id", String(200), nullable=False),  # the provider's id for the call
    Column("name", String(64), nullable=False),
    Column("input", Json, nullable=False),
    # awaiting -> approved | rejected ; approved -> started -> finished ; started -> unknown
    Column("status", String(16), nullable=False),
    Column("result", Text, nullable=True),
    Column("is_error", Boolean, nullable=False, default=False),
    Column("created_at", Timestamp, nullable=False),
    Column("started_at", Timestamp, nullable=True),
    Column("finished_at", Timestamp, nullable=True),
    UniqueConstraint("step_id", "seq", name="uq_tool_calls_step_seq"),
)

# The durable event log of each run (engine/events.py appends, nothing else writes it).
run_events = Table(
    "run_events",
    metadata,
    Column("run_id", Id, ForeignKey("runs.id"), primary_key=True),
    Column("id", Integer, primary_key=True, autoincrement=False),  # 1, 2, 3... per run
    Column("type", String(32), nullable=False),
    Column("data", Json, nullable=False),
    Column("created_at", Timestamp, nullable=False),
)

# Idempotency-Key of run triggers. The unique constraint decides races between concurrent
# requests with one key (the insert is part of the trigger's transaction); rows older than
# the retention period are purged periodically and never answered.
idempotency_keys = Table(
    "idempotency_keys",
    metadata,
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("key", String(255), nullable=False),
    Column("request_hash", String(64), nullable=False),  # SHA-256 of workflow id and body
    Column("run_id", Id, nullable=False),
    Column("created_at", Timestamp, nullable=False),
    UniqueConstraint("account_id", "key", name="uq_idempotency_keys_account_key"),
    Index("ix_idempotency_keys_created", "created_at"),
)

# Webhook endpoints of an account (EXTENSIONS part 6). `events` is the list of subscribed
# event types; the secret is kept in the clear because every attempt is signed with it.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Id, primary_key=True),
    Column("account_id", Id, ForeignKey("accounts.id"), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("events", Json, nullable=False),
    Column("workflow_id", Id, nullable=True),  # only this workflow's runs, when set
    Column("description", String(500), nullable=True),
    Column("status", String(16), nullable=False),  # enabled | disabled
    Column("secret", String(200), nullable=False),
    Column("created_at", Timestamp, nullable=False),
    Column("updated_at", Timestamp, nullable=False),
    # The outbox hook reads an account's enabled endpoints on every event it writes.
    Index("ix_webhook_endpoints_account_status", "account_id", "status"),
)

# The outbox: one row per (event, endpoint), inserted in the transaction that writes the event
# (webhooks/outbox.py), so no committed event lacks its deliveries. The body is not copied:
# it is the event's row in run_events.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Id, primary_key=True),  # also the `webhook-id` header, the same on every retry
    Column(
        "endpoint_id", Id, ForeignKey("webhook_endpoints.id", ondelete="CASCADE"), nullable=False
    ),
    Column("run_id", Id, nullable=False),
    Column("event_id", Integer, nullable=False),
    Column("event_type", String(32), nullable=False),
    Column("status", String(16), nullable=False),  # pending | succeeded | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_status_code", Integer, nullable=True),
    Column("last_error", Text, nullable=True),
    Column("next_attempt_at", Timestamp, nullable=True),  # set while pending
    # A sender's claim on the attempt in flight: another sender may take the delivery only
    # after this passes (the claimer died), so two senders never send one attempt.
    Column("claimed_until", Timestamp, nullable=True),
    # A redelivery of a finished delivery: one attempt, then it is finished again.
    Column("one_shot", Boolean, nullable=False, default=False),
    Column("created_at", Timestamp, nullable=False),
    Column("delivered_at", Timestamp, nullable=True),
    Index("ix_webhook_deliveries_endpoint_created", "endpoint_id", "created_at"),
    Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
)
