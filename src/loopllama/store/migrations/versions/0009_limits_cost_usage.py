"""limits, cost and usage

Revision ID: 0009
Revises: 0005
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

revision = "0009"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("rate_limit", sa.String(length=40), nullable=True))
    op.add_column("workflows", sa.Column("max_cost_usd", sa.Float(), nullable=True))
    op.add_column("workflows", sa.Column("max_tokens", sa.Integer(), nullable=True))
    op.add_column("steps", sa.Column("cost_usd", sa.Float(), nullable=True))
    op.add_column("runs", sa.Column("cost_usd", sa.Float(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("cost_usd")
    with op.batch_alter_table("steps") as batch:
        batch.drop_column("cost_usd")
    with op.batch_alter_table("workflows") as batch:
        batch.drop_column("max_tokens")
        batch.drop_column("max_cost_usd")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("rate_limit")
