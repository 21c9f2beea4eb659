"""Finding runs: a name, tags and metadata per run; the list's sort keys; the facets and rollups the
list's menus and totals read instead of scanning every run.

Existing runs get their name from the input's first line, listed_at from their completion (or start,
while open), and are counted into the facets and rollups, so nothing reads differently after it.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

JSONDocument = sa.JSON().with_variant(JSONB(), "postgresql")
StringList = sa.JSON().with_variant(ARRAY(sa.Text()), "postgresql")
NAME_LENGTH = 80
BATCH = 2000


def money(precision):
    return sa.Numeric(precision, 12).with_variant(sa.BigInteger(), "sqlite")


def name_from(text):
    """The input's first non-blank line, cut at a word to at most 80 characters.

    A copy of recording.name_from_input as it was when this migration was written: a migration
    must keep doing what it did, whatever the app's code becomes.
    """
    line = next((line.strip() for line in (text or "").splitlines() if line.strip()), "")
    if len(line) <= NAME_LENGTH:
        return line
    cut = line[: NAME_LENGTH - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip() + "…"


def upgrade():
    with op.batch_alter_table("pipeline_runs") as batch:
        batch.add_column(sa.Column("name", sa.String(length=200), server_default="", nullable=False))
        batch.add_column(sa.Column("tags", StringList, nullable=True))
        batch.add_column(sa.Column("metadata", JSONDocument, nullable=True))
        batch.add_column(sa.Column("listed_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("total_tokens", sa.BigInteger(), server_default="0", nullable=False))
        batch.add_column(sa.Column("sort_cost", money(18), server_default="-1", nullable=False))
        batch.add_column(sa.Column("sort_duration_ms", sa.BigInteger(), server_default="-1", nullable=False))
    backfill_runs()
    with op.batch_alter_table("pipeline_runs") as batch:
        batch.alter_column("listed_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.drop_index("ix_pipeline_runs_list")
    op.create_index("ix_pipeline_runs_listed", "pipeline_runs", ["user_id", sa.text("listed_at DESC"), sa.text("id DESC")])
    op.create_index(
        "ix_pipeline_runs_status_listed", "pipeline_runs",
        ["user_id", "status", sa.text("listed_at DESC"), sa.text("id DESC")],
    )
    op.create_index("ix_pipeline_runs_cost", "pipeline_runs", ["user_id", "sort_cost", "id"])
    op.create_index("ix_pipeline_runs_tokens", "pipeline_runs", ["user_id", "total_tokens", "id"])
    op.create_index("ix_pipeline_runs_tags", "pipeline_runs", ["tags"], postgresql_using="gin")
    op.create_index("ix_pipeline_runs_duration", "pipeline_runs", ["user_id", "sort_duration_ms", "id"])

    op.create_table(
        "run_facets",
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=200), nullable=False),
        sa.Column("runs", sa.BigInteger(), nullable=False),
        sa.CheckConstraint("kind IN ('pipeline', 'model', 'tag')", name=op.f("ck_run_facets_kind")),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_run_facets_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "kind", "value", name=op.f("pk_run_facets")),
    )
    op.create_table(
        "run_rollups",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.String(length=36), nullable=False),
        sa.Column("pipeline_id", sa.String(length=36), nullable=False),
        sa.Column("model", sa.String(length=200), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("runs", sa.BigInteger(), nullable=False),
        sa.Column("input_tokens", sa.BigInteger(), nullable=False),
        sa.Column("output_tokens", sa.BigInteger(), nullable=False),
        sa.Column("cost", money(24), nullable=False),
        sa.Column("unpriced_runs", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["pipeline_id"], ["pipelines.id"], name=op.f("fk_run_rollups_pipeline_id_pipelines"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_run_rollups_user_id_users"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_run_rollups")),
        sa.UniqueConstraint(
            "user_id", "pipeline_id", "model", "status", "day",
            name=op.f("uq_run_rollups_user_id_pipeline_id_model_status_day"),
        ),
    )
    backfill_summaries()


def backfill_runs():
    """Name, listed_at and the sort keys of the runs already stored."""
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    duration = (
        "CAST(EXTRACT(EPOCH FROM (completed_at - created_at)) * 1000 AS BIGINT)" if postgres
        else "CAST(ROUND((julianday(completed_at) - julianday(created_at)) * 86400000) AS INTEGER)"
    )
    # An unpriced run sorts below every cost: -1 in SQLite's count of 10^-12 dollars, -10^-12 here.
    unpriced = "-0.000000000001" if postgres else "-1"
    finished = "completed_at IS NOT NULL AND status IN ('completed', 'failed')"
    op.execute(
        f"UPDATE pipeline_runs SET listed_at = CASE WHEN {finished} THEN completed_at ELSE created_at END, "
        "total_tokens = COALESCE(input_tokens, 0) + COALESCE(output_tokens, 0), "
        f"sort_cost = COALESCE(cost, {unpriced}), "
        f"sort_duration_ms = CASE WHEN {finished} THEN {duration} ELSE -1 END"
    )
    # Names in batches: only the first 1,000 characters of each input leave the database, and each
    # batch goes back as one executemany.
    runs = sa.table("pipeline_runs", sa.column("id", sa.String), sa.column("name", sa.String))
    rename = runs.update().where(runs.c.id == sa.bindparam("run_id")).values(name=sa.bindparam("new_name"))
    last = ""
    while True:
        rows = bind.execute(
            sa.text("SELECT id, substr(input, 1, 1000) FROM pipeline_runs WHERE id > :last ORDER BY id LIMIT :n"),
            {"last": last, "n": BATCH},
        ).all()
        if not rows:
            break
        bind.execute(rename, [{"run_id": run_id, "new_name": name_from(text)} for run_id, text in rows])
        last = rows[-1][0]


def backfill_summaries():
    """Count the runs already stored into the facets and the rollups."""
    postgres = op.get_bind().dialect.name == "postgresql"
    day = "CAST(listed_at AT TIME ZONE 'UTC' AS DATE)" if postgres else "date(listed_at)"
    op.execute(
        "INSERT INTO run_facets (user_id, kind, value, runs) "
        "SELECT r.user_id, 'pipeline', p.name, count(*) FROM pipeline_runs r JOIN pipelines p ON p.id = r.pipeline_id "
        "GROUP BY r.user_id, p.name"
    )
    op.execute(
        "INSERT INTO run_facets (user_id, kind, value, runs) "
        "SELECT user_id, 'model', model, count(*) FROM pipeline_runs WHERE model IS NOT NULL GROUP BY user_id, model"
    )
    op.execute(
        "INSERT INTO run_rollups (user_id, pipeline_id, model, status, day, runs, input_tokens, output_tokens, "
        "cost, unpriced_runs) "
        f"SELECT user_id, pipeline_id, COALESCE(model, ''), status, {day}, count(*), "
        "COALESCE(sum(input_tokens), 0), COALESCE(sum(output_tokens), 0), COALESCE(sum(cost), 0), "
        "count(*) FILTER (WHERE cost IS NULL AND status IN ('completed', 'failed')) "
        f"FROM pipeline_runs GROUP BY user_id, pipeline_id, COALESCE(model, ''), status, {day}"
    )


def downgrade():
    op.drop_table("run_rollups")
    op.drop_table("run_facets")
    for name in ("ix_pipeline_runs_duration", "ix_pipeline_runs_tags", "ix_pipeline_runs_tokens", "ix_pipeline_runs_cost",
                 "ix_pipeline_runs_status_listed", "ix_pipeline_runs_listed"):
        op.drop_index(name, table_name="pipeline_runs")
    with op.batch_alter_table("pipeline_runs") as batch:
        for column in ("sort_duration_ms", "sort_cost", "total_tokens", "listed_at", "metadata", "tags", "name"):
            batch.drop_column(column)
    op.create_index(
        "ix_pipeline_runs_list", "pipeline_runs",
        ["user_id", "status", sa.text("completed_at DESC"), sa.text("id DESC")],
    )
