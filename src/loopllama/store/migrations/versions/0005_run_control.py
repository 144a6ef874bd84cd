"""run control, workflow versions and locks

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

- `workflow_versions`: one immutable row per definition of a workflow; every existing workflow
  gets its current definition as version 1. `workflows` gains `version`, `locked` and
  `max_run_seconds`.
- `runs` gain `workflow_version` (1 for existing runs), `forked_from` and `active_seconds`
  (the time limit's clock); `steps` gain `forked`.
- `idempotency_keys`: the unique constraint per account decides concurrent triggers.
- Indexes for the run lists: newest first per account, per account and status, per workflow
  (replacing the one on (workflow_id, created_at)), per workflow and status, each ending in
  (created_at, id) so that a keyset page is one index range scan, however deep.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("workflows", sa.Column("max_run_seconds", sa.Integer(), nullable=True))
    op.add_column(
        "workflows", sa.Column("version", sa.Integer(), nullable=False, server_default="1")
    )
    op.add_column(
        "workflows",
        sa.Column("locked", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    versions = op.create_table(
        "workflow_versions",
        sa.Column("workflow_id", sa.String(length=32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("definition", JSON, nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["workflow_id"],
            ["workflows.id"],
            name=op.f("fk_workflow_versions_workflow_id_workflows"),
        ),
        sa.PrimaryKeyConstraint("workflow_id", "version", name=op.f("pk_workflow_versions")),
    )
    workflows = sa.table(
        "workflows",
        sa.column("id", sa.String),
        sa.column("model", sa.String),
        sa.column("crew", JSON),
        sa.column("human_in_the_loop", JSON),
        sa.column("tools", JSON),
        sa.column("updated_at", TIMESTAMP),
    )
    bind = op.get_bind()
    rows = bind.execute(sa.select(workflows)).all()
    if rows:
        op.bulk_insert(
            versions,
            [
                {
                    "workflow_id": row.id,
                    "version": 1,
                    "definition": {
                        "model": row.model,
                        "crew": row.crew,
                        "human_in_the_loop": row.human_in_the_loop,
                        "tools": row.tools,
                        "max_run_seconds": None,
                    },
                    "created_at": row.updated_at,
                }
                for row in rows
            ],
        )

    op.add_column(
        "runs", sa.Column("workflow_version", sa.Integer(), nullable=True, server_default="1")
    )
    op.add_column("runs", sa.Column("forked_from", JSON, nullable=True))
    op.add_column(
        "runs",
        sa.Column("active_seconds", sa.Float(), nullable=False, server_default="0"),
    )
    op.add_column(
        "steps", sa.Column("forked", sa.Boolean(), nullable=False, server_default=sa.false())
    )
    op.create_index("ix_runs_account_created", "runs", ["account_id", "created_at", "id"])
    # Replaces (workflow_id, created_at): with the id too, a page needs no sort at all.
    op.drop_index("ix_runs_workflow_created", table_name="runs")
    op.create_index("ix_runs_workflow_created_id", "runs", ["workflow_id", "created_at", "id"])
    op.create_index(
        "ix_runs_account_status_created", "runs", ["account_id", "status", "created_at", "id"]
    )
    op.create_index(
        "ix_runs_workflow_status_created", "runs", ["workflow_id", "status", "created_at", "id"]
    )

    op.create_table(
        "idempotency_keys",
        sa.Column("account_id", sa.String(length=32), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("request_hash", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"], ["accounts.id"], name=op.f("fk_idempotency_keys_account_id_accounts")
        ),
        sa.UniqueConstraint("account_id", "key", name="uq_idempotency_keys_account_key"),
    )
    op.create_index("ix_idempotency_keys_created", "idempotency_keys", ["created_at"])


def downgrade() -> None:
    op.drop_table("idempotency_keys")
    op.create_index("ix_runs_workflow_created", "runs", ["workflow_id", "created_at"])
    for name in (
        "ix_runs_workflow_created_id",
        "ix_runs_workflow_status_created",
        "ix_runs_account_status_created",
        "ix_runs_account_created",
    ):
        op.drop_index(name, table_name="runs")
    with op.batch_alter_table("steps") as batch:
        batch.drop_column("forked")
    with op.batch_alter_table("runs") as batch:
        for column in ("active_seconds", "forked_from", "workflow_version"):
            batch.drop_column(column)
    op.drop_table("workflow_versions")
    with op.batch_alter_table("workflows") as batch:
        for column in ("locked", "version", "max_run_seconds"):
            batch.drop_column(column)
