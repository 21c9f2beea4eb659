"""Artifact storage: structured output, model, token usage and cost on pipeline_runs.

Every new column is nullable: runs stored before this revision keep only final_output and
stay valid (seed pitfall 2). cost is numeric(18,12) so a ten-token step is not rounded to $0.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

JSON_DOCUMENT = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
# SQLite has no exact decimal: the app stores an integer count of 10^-12 dollars there.
MONEY = sa.Numeric(precision=18, scale=12).with_variant(sa.BigInteger(), "sqlite")


def upgrade():
    with op.batch_alter_table("pipeline_runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("artifact_data", JSON_DOCUMENT, nullable=True))
        batch_op.add_column(sa.Column("model", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("input_tokens", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("output_tokens", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("cost", MONEY, nullable=True))
        batch_op.add_column(sa.Column("cost_source", sa.String(length=16), nullable=True))
        batch_op.create_check_constraint(
            op.f("ck_pipeline_runs_cost_source"),
            "cost_source IS NULL OR cost_source IN ('computed', 'provider', 'unpriced')",
        )
    # Serves the artifact list exactly: equality on user and status, then the keyset order.
    # Outside the batch: SQLite's table copy cannot carry an index with DESC expressions.
    op.create_index(
        "ix_pipeline_runs_list",
        "pipeline_runs",
        ["user_id", "status", sa.text("completed_at DESC"), sa.text("id DESC")],
        unique=False,
    )


def downgrade():
    op.drop_index("ix_pipeline_runs_list", table_name="pipeline_runs")
    with op.batch_alter_table("pipeline_runs", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_pipeline_runs_cost_source"), type_="check")
        batch_op.drop_column("cost_source")
        batch_op.drop_column("cost")
        batch_op.drop_column("output_tokens")
        batch_op.drop_column("input_tokens")
        batch_op.drop_column("model")
        batch_op.drop_column("artifact_data")
