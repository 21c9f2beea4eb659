"""Full-text search over runs: their name, input, final output and every step's output.

PostgreSQL: a tsvector column pipeline_runs.search_vector with a GIN index, and the function
run_search_append(vector, parts) that adds parts to a vector without ever passing tsvector's 1 MB
limit. SQLite: run_search_parts (one row per searchable part, removed with its run by the foreign
key) and the external-content FTS5 index run_search over it, kept by two triggers.

Existing runs are indexed here, in SQL, in batches.

On SQLite a later batch migration of pipeline_runs (a table copy) drops the old table, which
cascades to run_search_parts: such a migration must index the runs again afterwards.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

# Copies of search.py's values as they were when this was written: a migration keeps doing what it did.
PART_CHARS = 100_000
INPUT_POSITION = 1_000_000_000
BATCH = 2000

# PL/pgSQL only for the exception handler: a part that would push the vector past tsvector's 1 MB
# is left out (and so is everything after it), so no output, however large or odd, fails a write.
APPEND_FUNCTION = f"""
CREATE FUNCTION run_search_append(vector tsvector, parts text[]) RETURNS tsvector
LANGUAGE plpgsql IMMUTABLE AS $$
DECLARE
    part text;
BEGIN
    FOREACH part IN ARRAY parts LOOP
        BEGIN
            vector := vector || to_tsvector('english', left(coalesce(part, ''), {PART_CHARS}));
        EXCEPTION WHEN program_limit_exceeded THEN
            EXIT;
        END;
    END LOOP;
    RETURN vector;
END $$
"""

POSTGRES_VECTOR = f"""
run_search_append(''::tsvector, ARRAY[
    name, input, coalesce(nullif(artifact_data->>'finalOutput', ''), final_output)
] || ARRAY(
    SELECT left(step->>'output', {PART_CHARS})
    FROM jsonb_array_elements(CASE WHEN jsonb_typeof(artifact_data->'steps') = 'array'
                                   THEN artifact_data->'steps' END) WITH ORDINALITY AS s(step, n)
    ORDER BY n
))
"""

SQLITE_PARTS = f"""
INSERT INTO run_search_parts (run_id, user_id, position, agent, body)
SELECT run_id, user_id, position, agent, body FROM (
    SELECT id AS run_id, user_id, 0 AS position, NULL AS agent, substr(name, 1, {PART_CHARS}) AS body
    FROM pipeline_runs WHERE id > :last AND id <= :upto
    UNION ALL
    SELECT id, user_id, 1, NULL,
           substr(coalesce(nullif(json_extract(artifact_data, '$.finalOutput'), ''), final_output), 1, {PART_CHARS})
    FROM pipeline_runs WHERE id > :last AND id <= :upto
    UNION ALL
    SELECT r.id, r.user_id, 2 + s.key, json_extract(s.value, '$.agentName'),
           substr(json_extract(s.value, '$.output'), 1, {PART_CHARS})
    FROM pipeline_runs AS r, json_each(r.artifact_data, '$.steps') AS s WHERE r.id > :last AND r.id <= :upto
    UNION ALL
    SELECT id, user_id, {INPUT_POSITION}, NULL, substr(input, 1, {PART_CHARS})
    FROM pipeline_runs WHERE id > :last AND id <= :upto
) WHERE body <> ''
"""


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        upgrade_postgres()
    else:
        upgrade_sqlite()


def upgrade_postgres():
    op.execute(APPEND_FUNCTION)
    op.add_column("pipeline_runs", sa.Column("search_vector", sa.dialects.postgresql.TSVECTOR(), nullable=True))
    batches(f"UPDATE pipeline_runs SET search_vector = {POSTGRES_VECTOR} WHERE id > :last AND id <= :upto")
    op.create_index(
        "ix_pipeline_runs_search_vector", "pipeline_runs", ["search_vector"], postgresql_using="gin"
    )


def upgrade_sqlite():
    op.execute(
        "CREATE TABLE run_search_parts ("
        " id INTEGER PRIMARY KEY,"
        " run_id VARCHAR(36) NOT NULL REFERENCES pipeline_runs (id) ON DELETE CASCADE,"
        " user_id VARCHAR(36) NOT NULL,"
        " position INTEGER NOT NULL,"  # 0 name, 1 final output, 2 + i step i, then the input
        " agent VARCHAR(200),"
        " body TEXT NOT NULL)"
    )
    op.execute("CREATE INDEX ix_run_search_parts_run_id ON run_search_parts (run_id)")
    # External content: the FTS index reads bodies from run_search_parts, which finds a run's rows
    # through its index (an FTS5 table's own UNINDEXED columns can only be scanned).
    op.execute(
        "CREATE VIRTUAL TABLE run_search USING fts5("
        "body, content='run_search_parts', content_rowid='id', tokenize='porter unicode61')"
    )
    op.execute(
        "CREATE TRIGGER run_search_parts_insert AFTER INSERT ON run_search_parts BEGIN "
        "INSERT INTO run_search (rowid, body) VALUES (new.id, new.body); END"
    )
    # Also fires for rows the foreign key cascades away: a deleted run or user leaves nothing indexed.
    op.execute(
        "CREATE TRIGGER run_search_parts_delete AFTER DELETE ON run_search_parts BEGIN "
        "INSERT INTO run_search (run_search, rowid, body) VALUES ('delete', old.id, old.body); END"
    )
    batches(SQLITE_PARTS)


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


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_pipeline_runs_search_vector", table_name="pipeline_runs")
        op.drop_column("pipeline_runs", "search_vector")
        op.execute("DROP FUNCTION run_search_append(tsvector, text[])")
    else:
        op.execute("DROP TABLE run_search")
        op.execute("DROP TABLE run_search_parts")
