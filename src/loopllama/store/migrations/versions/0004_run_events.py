"""run events: a durable, gapless event log per run, announced on PostgreSQL

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30

- `run_events`, keyed (run_id, id): the primary key is the guard against a repeated id.
- `runs.last_event_id`: the counter that hands out ids, bumped in the transaction that appends
  (engine/events.py), so two writers of one run queue on the run's row lock.
- PostgreSQL: a trigger announces every appended event with `NOTIFY loopllama_events,
  '<run_id>:<id>'`. A notification is delivered when (and only if) its transaction commits, so
  a listener (engine/notify.py) never hears of an event it cannot read yet; it costs the
  engine no extra round trip.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NOTIFY_FUNCTION = """
CREATE FUNCTION loopllama_announce_event_v1() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify('loopllama_events', NEW.run_id || ':' || NEW.id);
    RETURN NULL;
END;
$$;
"""

NOTIFY_TRIGGER = (
    "CREATE TRIGGER loopllama_announce_event AFTER INSERT ON run_events "
    "FOR EACH ROW EXECUTE FUNCTION loopllama_announce_event_v1()"
)


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(
            sa.Column("last_event_id", sa.Integer(), nullable=False, server_default="0")
        )
    op.create_table(
        "run_events",
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_run_events_run_id_runs")),
        sa.PrimaryKeyConstraint("run_id", "id", name=op.f("pk_run_events")),
    )
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    cursor = bind.connection.dbapi_connection.cursor()  # verbatim: ':' in the body
    try:
        cursor.execute(NOTIFY_FUNCTION)
        cursor.execute(NOTIFY_TRIGGER)
    finally:
        cursor.close()


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        bind.exec_driver_sql("DROP TRIGGER IF EXISTS loopllama_announce_event ON run_events")
        bind.exec_driver_sql("DROP FUNCTION IF EXISTS loopllama_announce_event_v1()")
    op.drop_table("run_events")
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("last_event_id")
