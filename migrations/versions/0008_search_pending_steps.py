"""PostgreSQL search: a step posted to an open run is indexed on its own, no longer appended to the
run's vector.

Appending a step's words to pipeline_runs.search_vector rewrote the whole vector (and re-entered
every one of its words in the GIN index) with each step, so posting the 100th step of a run cost
far more than posting the first. Now an open run's posted steps each get a row in
run_search_pending (run, stepOrder, the step's vector); a search reads an open run as its vector
followed by those, through the aggregate run_search_agg (which, like run_search_append, leaves out
a part that would pass tsvector's 1 MB limit). When the run closes, its vector is computed whole
and its pending rows are deleted.

Existing vectors already hold every step posted so far, so nothing needs indexing again. The
downgrade folds pending steps back into their runs' vectors.

SQLite indexes one row per part already (run_search_parts): nothing changes there.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# The exception handler is why this is PL/pgSQL: a part that would push the vector past 1 MB is
# left out, so a search never fails on an open run however much its steps hold.
CONCAT_FUNCTION = """
CREATE FUNCTION run_search_concat(vector tsvector, part tsvector) RETURNS tsvector
LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN
    RETURN vector || coalesce(part, ''::tsvector);
EXCEPTION WHEN program_limit_exceeded THEN
    RETURN vector;
END $$
"""
AGGREGATE = "CREATE AGGREGATE run_search_agg(tsvector) (SFUNC = run_search_concat, STYPE = tsvector, INITCOND = '')"

FOLD_PENDING = """
UPDATE pipeline_runs AS r SET search_vector = (
    SELECT run_search_agg(part ORDER BY position) FROM (
        SELECT 0 AS position, r.search_vector AS part
        UNION ALL
        SELECT 1 + p.step_order, p.vector FROM run_search_pending AS p WHERE p.run_id = r.id
    ) AS parts
)
WHERE r.id IN (SELECT run_id FROM run_search_pending)
"""


def upgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(CONCAT_FUNCTION)
    op.execute(AGGREGATE)
    op.execute(
        "CREATE TABLE run_search_pending ("
        " run_id VARCHAR(36) NOT NULL REFERENCES pipeline_runs (id) ON DELETE CASCADE,"
        " step_order INTEGER NOT NULL,"
        " vector tsvector NOT NULL,"
        " PRIMARY KEY (run_id, step_order))"
    )


def downgrade():
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(FOLD_PENDING)
    op.execute("DROP TABLE run_search_pending")
    op.execute("DROP AGGREGATE run_search_agg(tsvector)")
    op.execute("DROP FUNCTION run_search_concat(tsvector, tsvector)")
