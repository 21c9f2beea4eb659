"""PostgreSQL: record_new_runs(p_user_id, p_runs), the one statement that writes new runs (each run's
row, its steps, its search vector and its share of the summaries) from one jsonb document, as a
PL/pgSQL function so that its plan is made once a session, and generic.

The session plans every other statement with its values (the list's and search's plans depend on
them); this one's does not, and planning it on every call was a third of the database's work for a
one-shot run. The body is recording.new_runs_function_body() as it was when this was written (a
migration keeps doing what it did); tests/test_ingestion.py holds the function in the database to
the app's text, so a change of the tables or the summaries comes with a migration replacing it
(PL/pgSQL records no dependency on the columns it names: that test is what notices a column
dropped or renamed). A later migration replacing the function restores this BODY on its downgrade.
SQLite has no functions: the app writes there statement by statement.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

BODY = """BEGIN RETURN QUERY
        WITH given AS (
            SELECT e.document, g.* FROM jsonb_array_elements(p_runs) AS e(document),
                jsonb_populate_record(NULL::pipeline_runs, e.document) AS g
        ), run AS (
            INSERT INTO pipeline_runs (id, user_id, status, name, tags, metadata, input, variables, final_output, artifact_data, model, input_tokens, output_tokens, cost, cost_source, error, created_at, completed_at, listed_at, total_tokens, sort_cost, sort_duration_ms, pipeline_id, search_vector)
            SELECT g.id, g.user_id, g.status, g.name, g.tags, g.metadata, g.input, COALESCE(g.variables, 'null'::jsonb), g.final_output, COALESCE(g.artifact_data, 'null'::jsonb), g.model, g.input_tokens, g.output_tokens, g.cost, g.cost_source, g.error, g.created_at, g.completed_at, g.listed_at, g.total_tokens, g.sort_cost, g.sort_duration_ms, p.id,
                   run_search_append(''::tsvector, ARRAY(SELECT part FROM jsonb_array_elements_text(g.document->'search_parts') WITH ORDINALITY AS parts(part, n) ORDER BY n))
            FROM given AS g JOIN pipelines AS p ON p.user_id = p_user_id AND p.name = g.document->>'pipeline_name'
            WHERE NOT EXISTS (  -- all or none: none when the user lacks a pipeline of one of them
                SELECT FROM given AS missing WHERE NOT EXISTS (SELECT FROM pipelines AS q
                    WHERE q.user_id = p_user_id AND q.name = missing.document->>'pipeline_name'))
            RETURNING pipeline_runs.user_id, pipeline_runs.pipeline_id, pipeline_runs.model, pipeline_runs.status, pipeline_runs.listed_at, pipeline_runs.input_tokens, pipeline_runs.output_tokens, pipeline_runs.cost, pipeline_runs.tags, pipeline_runs.id
        ), steps AS (
            INSERT INTO pipeline_run_steps (run_id, step_order, agent_id, agent_name, output, status, model, input_tokens, output_tokens, cost, cost_source, started_at, completed_at)
            SELECT run.id, s.step_order, s.agent_id, s.agent_name, s.output, s.status, s.model, s.input_tokens, s.output_tokens, s.cost, s.cost_source, s.started_at, s.completed_at
            FROM run JOIN given AS g ON g.id = run.id,
                 jsonb_populate_recordset(NULL::pipeline_run_steps, g.document->'steps') AS s
        ), rollups AS (INSERT INTO run_rollups (user_id, pipeline_id, model, status, day, runs, input_tokens, output_tokens, cost, unpriced_runs) SELECT r.user_id, r.pipeline_id, COALESCE(r.model, ''), r.status, CAST(r.listed_at AT TIME ZONE 'UTC' AS DATE), count(*), COALESCE(sum(r.input_tokens), 0), COALESCE(sum(r.output_tokens), 0), COALESCE(sum(r.cost), 0), count(*) FILTER (WHERE r.cost IS NULL AND r.status IN ('completed', 'failed')) FROM run AS r GROUP BY r.user_id, r.pipeline_id, COALESCE(r.model, ''), r.status, CAST(r.listed_at AT TIME ZONE 'UTC' AS DATE) ORDER BY r.user_id COLLATE "C", r.pipeline_id COLLATE "C", COALESCE(r.model, '') COLLATE "C", r.status COLLATE "C", CAST(r.listed_at AT TIME ZONE 'UTC' AS DATE) ON CONFLICT (user_id, pipeline_id, model, status, day) DO UPDATE SET runs = run_rollups.runs + excluded.runs, input_tokens = run_rollups.input_tokens + excluded.input_tokens, output_tokens = run_rollups.output_tokens + excluded.output_tokens, cost = run_rollups.cost + excluded.cost, unpriced_runs = run_rollups.unpriced_runs + excluded.unpriced_runs RETURNING 1),
        facets AS (INSERT INTO run_facets (user_id, kind, value, runs) SELECT * FROM (SELECT user_id, kind, value, count(*) FROM (SELECT r.user_id, 'pipeline' AS kind, p.name AS value FROM run AS r JOIN pipelines p ON p.id = r.pipeline_id UNION ALL SELECT r.user_id, 'model', r.model FROM run AS r WHERE COALESCE(r.model, '') <> '' UNION ALL SELECT r.user_id, 'tag', t.value FROM run AS r, unnest(r.tags) AS t(value)) AS shares GROUP BY user_id, kind, value) AS facet_rows WHERE (SELECT count(*) FROM rollups) >= 0 ORDER BY user_id COLLATE "C", kind COLLATE "C", value COLLATE "C" ON CONFLICT (user_id, kind, value) DO UPDATE SET runs = run_facets.runs + excluded.runs)
        SELECT id, pipeline_id FROM run
    ; END"""

FUNCTION = f"""
CREATE OR REPLACE FUNCTION record_new_runs(p_user_id varchar, p_runs jsonb)
RETURNS TABLE (written_id varchar, written_pipeline_id varchar)
LANGUAGE plpgsql SET plan_cache_mode = force_generic_plan
AS $record_new_runs${BODY}$record_new_runs$
"""


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute(FUNCTION)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION record_new_runs(varchar, jsonb)")
