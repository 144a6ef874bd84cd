"""limits, cost and usage

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-01

- `api_keys.rate_limit`: a key's own request limit ("5/second"), null for the server's.
- `workflows.max_cost_usd`, `workflows.max_tokens`: run budgets (part of the definition, so
  also in `workflow_versions.definition`, where old versions simply lack them: no budget).
- `steps.cost_usd`, `runs.cost_usd`: dollars, null while no model call of it has a price.
- `ix_runs_account_created` already serves GET /v1/usage's range over an account's runs; the
  steps of each run are then one probe of `uq_steps_run_order`. Nothing else is needed.
"""

import sqlalchemy as sa
from alembic import op

DEFER_RUN_V2 = """
CREATE FUNCTION loopllama_defer_run_v2(_run_id text, _task character varying,
                                       _queue character varying)
    RETURNS bigint
    LANGUAGE plpgsql
AS $$
DECLARE
    _lock text := 'run:' || _run_id;
    _account text;
    _clock bigint;
    _turn bigint;
    _job_id bigint;
BEGIN
    SELECT account_id INTO _account FROM runs WHERE id = _run_id;
    -- The virtual clock: the turn of the first wake-up waiting (an index probe), or after the
    -- latest turn given when none waits.
    SELECT -priority INTO _clock FROM procrastinate_jobs
        WHERE status = 'todo' AND queue_name = _queue AND task_name = _task
        ORDER BY priority DESC, id LIMIT 1;
    IF _clock IS NULL THEN
        SELECT max(next_turn) INTO _clock FROM loopllama_fair_turns;
    END IF;
    _clock := coalesce(_clock, 0);
    INSERT INTO loopllama_fair_turns AS t (account_id, next_turn)
        VALUES (coalesce(_account, ''), _clock + 1)
        ON CONFLICT (account_id) DO UPDATE SET next_turn = greatest(t.next_turn, _clock) + 1
        RETURNING next_turn - 1 INTO _turn;
    FOR _attempt IN 1..3 LOOP
        BEGIN
            SELECT unnest(procrastinate_defer_jobs_v1(ARRAY[ROW(
                _queue, _task, -least(_turn, 2147483647)::integer, _lock, _lock,
                jsonb_build_object('run_id', _run_id), NULL
            )::procrastinate_job_to_defer_v1])) INTO _job_id;
            RETURN _job_id;
        EXCEPTION WHEN unique_violation THEN
            -- A wake-up of this run is waiting (with its turn): pin it until the caller
            -- commits.
            PERFORM 1 FROM procrastinate_jobs
                WHERE queueing_lock = _lock AND status = 'todo' FOR UPDATE;
            IF FOUND THEN
                RETURN NULL;
            END IF;
            -- It started meanwhile: queue ours behind it.
        END;
    END LOOP;
    RAISE 'could not queue run %: its wake-ups keep starting', _run_id;
END;
$$;
"""

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("rate_limit", sa.String(length=40), nullable=True))
    op.add_column("workflows", sa.Column("max_cost_usd", sa.Float(), nullable=True))
    op.add_column("workflows", sa.Column("max_tokens", sa.Integer(), nullable=True))
    op.add_column("steps", sa.Column("cost_usd", sa.Float(), nullable=True))
    op.add_column("runs", sa.Column("cost_usd", sa.Float(), nullable=True))
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql(
            "CREATE TABLE loopllama_fair_turns (account_id varchar(32) PRIMARY KEY, "
            "next_turn bigint NOT NULL)"
        )
        bind.exec_driver_sql(
            "CREATE INDEX loopllama_fair_turns_next_turn_idx ON loopllama_fair_turns (next_turn)"
        )
        cursor = bind.connection.dbapi_connection.cursor()  # verbatim: '%' and ':' in the body
        try:
            cursor.execute(DEFER_RUN_V2)
        finally:
            cursor.close()


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql(
            "DROP FUNCTION IF EXISTS "
            "loopllama_defer_run_v2(text, character varying, character varying)"
        )
        bind.exec_driver_sql("DROP TABLE IF EXISTS loopllama_fair_turns")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("cost_usd")
    with op.batch_alter_table("steps") as batch:
        batch.drop_column("cost_usd")
    with op.batch_alter_table("workflows") as batch:
        batch.drop_column("max_tokens")
        batch.drop_column("max_cost_usd")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("rate_limit")
