"""key scopes, workflow-limited keys, expiry and last use

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

Every key made before this revision could do everything its account can: it becomes an
`admin` key (the column's server default fills the existing rows), with no workflow limit and
no expiry. Adding columns with a constant default rewrites no rows on PostgreSQL (11+) and is a
plain ALTER TABLE ADD COLUMN on SQLite.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "api_keys",
        sa.Column("scope", sa.String(length=8), nullable=False, server_default="admin"),
    )
    op.add_column(
        "api_keys",
        sa.Column(
            "workflow_ids",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
    )
    op.add_column("api_keys", sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("api_keys", sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        for column in ("last_used_at", "expires_at", "workflow_ids", "scope"):
            batch.drop_column(column)
