"""runs.trace_context: the trigger request's trace travels with the run

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01

When traces are on, a run records the W3C `traceparent` of the request that triggered it, and
whichever process advances the run (the API's engine or any `loopllama worker`) continues that
trace. Nullable, no default: a plain column add, instant on SQLite and PostgreSQL alike.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("trace_context", sa.String(64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:  # SQLite rebuilds the table to drop a column
        batch.drop_column("trace_context")
