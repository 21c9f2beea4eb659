"""Repricing: where each step's cost came from, and a record of every reprice.

`flask runs reprice` recomputes the costs we computed from today's price table and must never touch
one a provider reported. A run says which it has (cost_source), but a step did not: a step sent with
its own cost and one priced here were both just `cost`. pipeline_run_steps.cost_source now says
("provider" or "computed"; NULL without a cost). For a step stored before this revision it is known
only where the step could not have been priced here (a cost without both token counts, or without
any model on the step or its run): "provider". The others stay NULL, of unknown origin, and a reprice
keeps their cost as it is.

cost_reprices records each reprice that changed something (when, a fingerprint of the price table,
what it was asked for, runs changed, totals before and after); cost_reprice_runs the runs it changed,
with their cost before and after, which is how a run's page says when its cost was last recomputed.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

# SQLite has no exact decimal: the app stores an integer count of 10^-12 dollars there.
MONEY = sa.Numeric(18, 12).with_variant(sa.BigInteger(), "sqlite")
MONEY_TOTAL = sa.Numeric(24, 12).with_variant(sa.BigInteger(), "sqlite")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade():
    with op.batch_alter_table("pipeline_run_steps") as batch:
        batch.add_column(sa.Column("cost_source", sa.String(16), nullable=True))
        batch.create_check_constraint(
            op.f("ck_pipeline_run_steps_cost_source"), "cost_source IS NULL OR cost_source IN ('computed', 'provider')"
        )
    # The writer prices a step only when it has both token counts and a model (its own or the run's).
    op.execute(
        "UPDATE pipeline_run_steps SET cost_source = 'provider' WHERE cost IS NOT NULL AND ("
        " input_tokens IS NULL OR output_tokens IS NULL OR (model IS NULL AND"
        " (SELECT r.model FROM pipeline_runs AS r WHERE r.id = pipeline_run_steps.run_id) IS NULL))"
    )

    op.create_table(
        "cost_reprices",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("started_at", TIMESTAMP, nullable=False),
        sa.Column("finished_at", TIMESTAMP, nullable=True),
        sa.Column("prices_fingerprint", sa.String(64), nullable=False),
        sa.Column("prices_file", sa.String(1000), nullable=True),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("completed_from", sa.Date(), nullable=True),
        sa.Column("completed_to", sa.Date(), nullable=True),
        sa.Column("runs_considered", sa.BigInteger(), nullable=False),
        sa.Column("runs_changed", sa.BigInteger(), nullable=False),
        sa.Column("total_before", MONEY_TOTAL, nullable=False),
        sa.Column("total_after", MONEY_TOTAL, nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cost_reprices")),
    )
    op.create_table(
        "cost_reprice_runs",
        sa.Column("run_id", sa.String(36), nullable=False),
        sa.Column("reprice_id", sa.Integer(), nullable=False),
        sa.Column("cost_before", MONEY, nullable=True),
        sa.Column("cost_after", MONEY, nullable=True),
        sa.Column("cost_source_before", sa.String(16), nullable=False),
        sa.Column("cost_source_after", sa.String(16), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["pipeline_runs.id"], name=op.f("fk_cost_reprice_runs_run_id_pipeline_runs"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["reprice_id"], ["cost_reprices.id"], name=op.f("fk_cost_reprice_runs_reprice_id_cost_reprices"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "reprice_id", name=op.f("pk_cost_reprice_runs")),
    )
    op.create_index(op.f("ix_cost_reprice_runs_reprice_id"), "cost_reprice_runs", ["reprice_id"])


def downgrade():
    op.drop_index(op.f("ix_cost_reprice_runs_reprice_id"), table_name="cost_reprice_runs")
    op.drop_table("cost_reprice_runs")
    op.drop_table("cost_reprices")
    with op.batch_alter_table("pipeline_run_steps") as batch:
        batch.drop_constraint(op.f("ck_pipeline_run_steps_cost_source"), type_="check")
        batch.drop_column("cost_source")
