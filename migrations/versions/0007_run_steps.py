"""Steps get rows of their own: pipeline_run_steps, keyed by run and stepOrder, with each step's
status and (new) start and end times.

Until now a run's steps were the "steps" array of its artifact_data document, so reading one step
decompressed the whole document (a 2 KB tab beside a 20 MB step took 10 to 15 times as long) and
every step posted to a running run rewrote all of it. Each existing step becomes a row, with status
"completed" and unknown times; the array leaves the document, which keeps only "finalOutput": the
rows are the one copy. The downgrade puts the array back from the rows (times and status, which
the old shape cannot hold, are dropped).

PostgreSQL moves the data in SQL, a batch of runs at a time. SQLite (small, local databases) does it
in Python, where a step's cost, a decimal string in the document, becomes the exact integer count
of 10^-12 dollars that the Money type stores there.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

import json
from decimal import Decimal

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

BATCH = 2000
MONEY_PLACES = 12  # a copy of types.MONEY_PLACES when this was written


def upgrade():
    op.create_table(
        "pipeline_run_steps",
        sa.Column(
            "run_id", sa.String(36), sa.ForeignKey("pipeline_runs.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("step_order", sa.Integer(), primary_key=True, autoincrement=False),
        sa.Column("agent_id", sa.String(200), nullable=False),
        sa.Column("agent_name", sa.String(200), nullable=False),
        sa.Column("output", sa.Text(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("model", sa.String(200), nullable=True),
        sa.Column("input_tokens", sa.BigInteger(), nullable=True),
        sa.Column("output_tokens", sa.BigInteger(), nullable=True),
        sa.Column("cost", sa.Numeric(18, MONEY_PLACES).with_variant(sa.BigInteger(), "sqlite"), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status IN ('completed', 'failed')", name=op.f("ck_pipeline_run_steps_status")),
    )
    if op.get_bind().dialect.name == "postgresql":
        batches(POSTGRES_STEPS_TO_ROWS)
        batches("UPDATE pipeline_runs SET artifact_data = artifact_data - 'steps'"
                " WHERE id > :last AND id <= :upto AND artifact_data ? 'steps'")
    else:
        sqlite_batches(sqlite_steps_to_rows)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        batches(POSTGRES_ROWS_TO_STEPS)
    else:
        sqlite_batches(sqlite_rows_to_steps)
    op.drop_table("pipeline_run_steps")


# The array position is the step's order: the writer kept them equal, and the reader went by position.
POSTGRES_STEPS_TO_ROWS = """
INSERT INTO pipeline_run_steps
    (run_id, step_order, agent_id, agent_name, output, status, model, input_tokens, output_tokens, cost)
SELECT r.id, s.n - 1, s.step->>'agentId', s.step->>'agentName', coalesce(s.step->>'output', ''), 'completed',
       s.step->>'model', (s.step->>'inputTokens')::bigint, (s.step->>'outputTokens')::bigint,
       (s.step->>'cost')::numeric
FROM pipeline_runs AS r
CROSS JOIN LATERAL jsonb_array_elements(r.artifact_data->'steps') WITH ORDINALITY AS s(step, n)
WHERE r.id > :last AND r.id <= :upto AND jsonb_typeof(r.artifact_data->'steps') = 'array'
"""

POSTGRES_ROWS_TO_STEPS = """
UPDATE pipeline_runs AS r SET artifact_data = r.artifact_data || jsonb_build_object('steps', coalesce((
    SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object(
        'agentId', s.agent_id, 'agentName', s.agent_name, 'output', s.output, 'stepOrder', s.step_order,
        'model', s.model, 'inputTokens', s.input_tokens, 'outputTokens', s.output_tokens, 'cost', s.cost::text
    )) ORDER BY s.step_order)
    FROM pipeline_run_steps AS s WHERE s.run_id = r.id
), '[]'::jsonb))
WHERE r.id > :last AND r.id <= :upto AND r.artifact_data IS NOT NULL
"""


def batches(statement):
    """Run `statement` over every run, BATCH runs at a time (it takes the ids after :last up to :upto)."""
    bind = op.get_bind()
    last = ""
    while True:
        ids = bind.execute(
            sa.text("SELECT id FROM pipeline_runs WHERE id > :last ORDER BY id LIMIT :n"), {"last": last, "n": BATCH}
        ).scalars().all()
        if not ids:
            break
        bind.execute(sa.text(statement), {"last": last, "upto": ids[-1]})
        last = ids[-1]


def sqlite_batches(convert):
    """convert(bind, [(id, artifact_data text)]) for every run with a document, BATCH runs at a time."""
    bind = op.get_bind()
    last = ""
    while True:
        runs = bind.execute(
            sa.text("SELECT id, artifact_data FROM pipeline_runs WHERE id > :last AND artifact_data IS NOT NULL"
                    " AND artifact_data <> 'null' ORDER BY id LIMIT :n"),
            {"last": last, "n": BATCH},
        ).all()
        if not runs:
            break
        convert(bind, runs)
        last = runs[-1][0]


def sqlite_steps_to_rows(bind, runs):
    rows, documents = [], []
    for run_id, text in runs:
        document = json.loads(text)
        steps = document.pop("steps", None)
        if not isinstance(steps, list):
            continue
        for position, step in enumerate(steps):
            cost = step.get("cost")
            rows.append({
                "run_id": run_id, "step_order": position, "agent_id": step["agentId"],
                "agent_name": step["agentName"], "output": step.get("output") or "", "status": "completed",
                "model": step.get("model"), "input_tokens": step.get("inputTokens"),
                "output_tokens": step.get("outputTokens"),
                "cost": None if cost is None else int(Decimal(cost).scaleb(MONEY_PLACES)),
            })
        documents.append({"id": run_id, "document": json.dumps(document)})
    if rows:
        bind.execute(sa.text(
            "INSERT INTO pipeline_run_steps (run_id, step_order, agent_id, agent_name, output, status, model,"
            " input_tokens, output_tokens, cost) VALUES (:run_id, :step_order, :agent_id, :agent_name, :output,"
            " :status, :model, :input_tokens, :output_tokens, :cost)"
        ), rows)
    if documents:
        bind.execute(sa.text("UPDATE pipeline_runs SET artifact_data = :document WHERE id = :id"), documents)


def sqlite_rows_to_steps(bind, runs):
    documents = []
    for run_id, text in runs:
        document = json.loads(text)
        steps = []
        for order, agent_id, agent_name, output, model, tokens_in, tokens_out, cost in bind.execute(sa.text(
            "SELECT step_order, agent_id, agent_name, output, model, input_tokens, output_tokens, cost"
            " FROM pipeline_run_steps WHERE run_id = :id ORDER BY step_order"
        ), {"id": run_id}):
            step = {"agentId": agent_id, "agentName": agent_name, "output": output, "stepOrder": order}
            for key, value in (("model", model), ("inputTokens", tokens_in), ("outputTokens", tokens_out)):
                if value is not None:
                    step[key] = value
            if cost is not None:
                step["cost"] = format(Decimal(int(cost)).scaleb(-MONEY_PLACES), "f")
            steps.append(step)
        documents.append({"id": run_id, "document": json.dumps({"steps": steps, **document})})
    bind.execute(sa.text("UPDATE pipeline_runs SET artifact_data = :document WHERE id = :id"), documents)
