"""job queue: procrastinate's schema on PostgreSQL

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23

Worker processes take runs from a procrastinate queue (engine/queue/). Its tables and functions
live in the same PostgreSQL database, so a run and its job are written in one transaction. The
schema is a frozen copy of procrastinate 3.10.0's `schema.sql` (sql/ beside this folder): a
migration must apply the same SQL forever. A later procrastinate release that changes its
schema ships SQL migration files; apply them in a new revision here, as procrastinate's docs
advise for projects with their own migration tool. SQLite has no job queue (the embedded
engine runs in process): nothing to do there.
"""

from pathlib import Path

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = Path(__file__).parent.parent / "sql" / "procrastinate-3.10.0.sql"


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    if bind.exec_driver_sql("SELECT to_regclass('procrastinate_jobs')").scalar() is not None:
        return  # applied by hand (`procrastinate schema --apply`) before this revision existed
    # Run as one script on the migration's own connection (and transaction). The DB-API cursor
    # takes it verbatim: no parameters, so '%' and ':' in the SQL need no escaping.
    cursor = bind.connection.dbapi_connection.cursor()
    try:
        cursor.execute(SCHEMA.read_text(encoding="utf-8"))
    finally:
        cursor.close()


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        return
    bind.exec_driver_sql(
        "DROP TABLE IF EXISTS procrastinate_events, procrastinate_periodic_defers, "
        "procrastinate_jobs, procrastinate_workers CASCADE"
    )
    bind.exec_driver_sql(
        "DROP TYPE IF EXISTS procrastinate_job_to_defer_v1, procrastinate_job_event_type, "
        "procrastinate_job_status CASCADE"
    )
    functions = bind.exec_driver_sql(
        "SELECT p.oid::regprocedure::text FROM pg_proc p JOIN pg_namespace n "
        "ON n.oid = p.pronamespace WHERE n.nspname = current_schema() "
        "AND p.proname LIKE 'procrastinate%'"
    ).scalars()
    for signature in list(functions):
        bind.exec_driver_sql(f"DROP FUNCTION IF EXISTS {signature} CASCADE")
