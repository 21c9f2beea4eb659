"""The Alembic migrations, run the way `flask db upgrade` runs them, on SQLite and PostgreSQL.

Each test starts from an EMPTY database (not the session's migrated template) so it exercises
the migration scripts themselves: upgrade from nothing, legacy 0001 rows surviving 0002,
downgrade and upgrade again, and the migrated schema matching the models.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from flask import Flask
from flask_migrate import check, downgrade, upgrade

from artifacts_app import queries, search
from artifacts_app.extensions import db
from artifacts_app.filters import ListFilters
from artifacts_app.models import Pipeline, PipelineRun, User
from artifacts_app.types import JSONDocument, UTCDateTime
from tests import databases
from tests.conftest import dispose, make_app

TABLES_0001 = {"users", "api_tokens", "pipelines", "pipeline_runs"}
APP_TABLES = TABLES_0001 | {"login_failures", "idempotency_keys", "run_facets", "run_rollups", "pipeline_run_steps",
                            "cost_reprices", "cost_reprice_runs"}
# Full-text search on SQLite (0006): the parts table, its FTS5 index and the index's shadow tables.
SQLITE_SEARCH_TABLES = {"run_search_parts", "run_search"} | {
    f"run_search_{shadow}" for shadow in ("data", "idx", "docsize", "config")
}
HEAD = "0011"  # the newest revision; bump it with each new migration
# The columns 0002 adds to pipeline_runs; all nullable, so 0001 rows stay valid.
ARTIFACT_COLUMNS = ("artifact_data", "model", "input_tokens", "output_tokens", "cost", "cost_source")
# The columns pipeline_runs had at 0001.
LEGACY_RUN_COLUMNS = (
    "id",
    "pipeline_id",
    "user_id",
    "status",
    "input",
    "variables",
    "final_output",
    "error",
    "created_at",
    "completed_at",
)
LIST_INDEX = "ix_pipeline_runs_status_listed"

USER_ID = "00000000-0000-4000-8000-000000000001"
PIPELINE_ID = "00000000-0000-4000-8000-000000000002"
COMPLETED_RUN_ID = "00000000-0000-4000-8000-00000000000a"
FAILED_RUN_ID = "00000000-0000-4000-8000-00000000000b"
RUNNING_RUN_ID = "00000000-0000-4000-8000-00000000000c"

MARKDOWN_OUTPUT = (
    "# Résumé — naïve café ☕\n\n"
    "Étape **deux** : 日本語のテキスト, emoji 🚀, quotes “smart” and 'plain'.\n\n"
    "```python\nprint(\"héllo\")\n```\n\n"
    "| col | val |\n|-----|-----|\n| a   | 1   |\n"
)
T0 = datetime(2026, 11, 1, 9, 30, 15, 123456, tzinfo=timezone.utc)
# Written with a +02:00 offset: stored as UTC, the same instant reads back.
T1 = datetime(2026, 11, 1, 11, 31, 0, 654321, tzinfo=timezone(timedelta(hours=2)))

LEGACY_RUNS: list[dict[str, Any]] = [
    {
        "id": COMPLETED_RUN_ID,
        "status": "completed",
        "input": "Summarise the attached notes ✍️",
        "variables": {"tone": "formel", "tags": ["a", "ü"], "depth": 2, "nested": {"ok": True}},
        "final_output": MARKDOWN_OUTPUT,
        "error": None,
        "created_at": T0,
        "completed_at": T1,
    },
    {
        "id": FAILED_RUN_ID,
        "status": "failed",
        "input": "Translate this",
        "variables": None,
        "final_output": None,
        "error": "RateLimitError: 429 Too Many Requests (retry after 20s)",
        "created_at": T0 + timedelta(minutes=1),
        "completed_at": T0 + timedelta(minutes=2),
    },
    {
        "id": RUNNING_RUN_ID,
        "status": "running",
        "input": "Still going",
        "variables": None,
        "final_output": None,
        "error": None,
        "created_at": T0 + timedelta(minutes=3),
        "completed_at": None,
    },
]


@pytest.fixture
def empty_database_url(engine_name: str, tmp_path: Path) -> Iterator[str]:
    """A brand-new database with no tables: a SQLite file, or a scratch PostgreSQL database."""
    if engine_name == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrations.db'}"
        return
    base = databases.postgres_base_url()
    if base is None:
        if databases.in_ci():
            pytest.fail(f"{databases.POSTGRES_URL_VARIABLE} must be set when CI=true")
        pytest.skip(f"{databases.POSTGRES_URL_VARIABLE} is not set")
    try:
        url = databases.create_postgres_database(base)
    except sa.exc.OperationalError as error:
        if databases.in_ci():
            pytest.fail(f"PostgreSQL is unreachable under CI: {error}")
        pytest.skip(f"PostgreSQL is unreachable: {error}")
    try:
        yield url
    finally:
        databases.drop_postgres_database(base, url)


@pytest.fixture
def migration_app(empty_database_url: str, tmp_path: Path) -> Iterator[Flask]:
    """The app on the empty database, inside an app context; its engine is disposed afterwards."""
    app = make_app(empty_database_url, tmp_path)
    with app.app_context():
        try:
            yield app
        finally:
            dispose(app)


# --- helpers: all run inside the app context ------------------------------------------------


def migrate_to(revision: str) -> None:
    """`flask db upgrade REVISION`; the ORM session is closed first so it holds no locks."""
    db.session.remove()
    upgrade(revision=revision)


def migrate_down_to(revision: str) -> None:
    """`flask db downgrade REVISION`."""
    db.session.remove()
    downgrade(revision=revision)


def inspector() -> sa.Inspector:
    """A fresh inspector (each one caches what it reflected)."""
    return sa.inspect(db.engine)


def table_names() -> set[str]:
    return set(inspector().get_table_names())


def column_names(table: str) -> set[str]:
    return {column["name"] for column in inspector().get_columns(table)}


def index_names(table: str) -> set[str]:
    return {index["name"] for index in inspector().get_indexes(table)}


def check_constraint_names(table: str) -> set[str]:
    return {constraint["name"] for constraint in inspector().get_check_constraints(table)}


def alembic_versions() -> list[str]:
    with db.engine.connect() as connection:
        return list(connection.execute(sa.text("SELECT version_num FROM alembic_version")).scalars())


def raw_rows(table: str, columns: tuple[str, ...] | None = None) -> list[dict[str, Any]]:
    """Rows exactly as the driver returns them (no app types), ordered by id."""
    selected = ", ".join(columns) if columns else "*"
    with db.engine.connect() as connection:
        result = connection.execute(sa.text(f"SELECT {selected} FROM {table} ORDER BY id"))
        return [dict(row) for row in result.mappings()]


def typed_runs(columns: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """pipeline_runs rows read with the app's column types (aware datetimes, JSON as dicts)."""
    types = {"created_at": UTCDateTime(), "completed_at": UTCDateTime()}
    types.update({name: JSONDocument for name in ("variables", "artifact_data") if name in columns})
    statement = sa.text(f"SELECT {', '.join(columns)} FROM pipeline_runs ORDER BY id").columns(
        **{name: type_ for name, type_ in types.items() if name in columns}
    )
    with db.engine.connect() as connection:
        return {row["id"]: dict(row) for row in connection.execute(statement).mappings()}


def insert_legacy_rows() -> None:
    """What the app wrote at revision 0001, inserted with plain SQL (the models describe head)."""
    timestamp = UTCDateTime()
    with db.engine.begin() as connection:
        connection.execute(
            sa.text(
                "INSERT INTO users (id, email, password_hash, session_token, created_at) "
                "VALUES (:id, :email, :password_hash, :session_token, :created_at)"
            ).bindparams(sa.bindparam("created_at", type_=timestamp)),
            {
                "id": USER_ID,
                "email": "legacy@example.com",
                "password_hash": "scrypt:32768:8:1$salt$hash",
                "session_token": "legacy-session-token",
                "created_at": T0,
            },
        )
        connection.execute(
            sa.text(
                "INSERT INTO pipelines (id, user_id, name, created_at) "
                "VALUES (:id, :user_id, :name, :created_at)"
            ).bindparams(sa.bindparam("created_at", type_=timestamp)),
            {"id": PIPELINE_ID, "user_id": USER_ID, "name": "Légacy pipeline", "created_at": T0},
        )
        connection.execute(
            sa.text(
                "INSERT INTO pipeline_runs (id, pipeline_id, user_id, status, input, variables, "
                "final_output, error, created_at, completed_at) VALUES (:id, :pipeline_id, "
                ":user_id, :status, :input, :variables, :final_output, :error, :created_at, "
                ":completed_at)"
            ).bindparams(
                sa.bindparam("variables", type_=JSONDocument),
                sa.bindparam("created_at", type_=timestamp),
                sa.bindparam("completed_at", type_=timestamp),
            ),
            [{"pipeline_id": PIPELINE_ID, "user_id": USER_ID, **run} for run in LEGACY_RUNS],
        )


# --- tests ------------------------------------------------------------------------------------


def test_upgrade_to_head_from_empty(migration_app: Flask, engine_name: str) -> None:
    assert table_names() == set()

    migrate_to("head")

    search_tables = SQLITE_SEARCH_TABLES if engine_name == "sqlite" else {"run_search_pending"}
    assert table_names() == APP_TABLES | search_tables | {"alembic_version"}
    assert alembic_versions() == [HEAD]
    if engine_name == "postgresql":
        assert search.SEARCH_COLUMN in column_names("pipeline_runs")
        assert search.SEARCH_INDEX in index_names("pipeline_runs")
    assert set(ARTIFACT_COLUMNS) <= column_names("pipeline_runs")
    # The batch table copy on SQLite must keep what 0001 made on pipeline_runs.
    assert {
        "ix_pipeline_runs_pipeline_id",
        "ix_pipeline_runs_user_id",
        LIST_INDEX,
    } <= index_names("pipeline_runs")
    assert check_constraint_names("pipeline_runs") == {
        "ck_pipeline_runs_status",
        "ck_pipeline_runs_cost_source",
    }
    assert {fk["name"] for fk in inspector().get_foreign_keys("pipeline_runs")} == {
        "fk_pipeline_runs_pipeline_id_pipelines",
        "fk_pipeline_runs_user_id_users",
    }

    (list_index,) = [i for i in inspector().get_indexes("pipeline_runs") if i["name"] == LIST_INDEX]
    assert list_index["column_names"] == ["user_id", "status", "listed_at", "id"]
    assert not list_index["unique"]
    with db.engine.connect() as connection:
        if engine_name == "postgresql":
            definition = connection.execute(
                sa.text("SELECT indexdef FROM pg_indexes WHERE indexname = :name"),
                {"name": LIST_INDEX},
            ).scalar_one()
        else:
            definition = connection.execute(
                sa.text("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = :name"),
                {"name": LIST_INDEX},
            ).scalar_one()
    assert "listed_at DESC, id DESC" in definition


def test_legacy_rows_survive_upgrade(migration_app: Flask) -> None:
    migrate_to("0001")
    assert alembic_versions() == ["0001"]
    assert not set(ARTIFACT_COLUMNS) & column_names("pipeline_runs")
    insert_legacy_rows()
    users_before = raw_rows("users")
    pipelines_before = raw_rows("pipelines")
    runs_before = raw_rows("pipeline_runs", LEGACY_RUN_COLUMNS)
    assert len(runs_before) == 3

    migrate_to("head")

    assert alembic_versions() == [HEAD]
    # Byte for byte what the driver returned before (SQLite's table copy included); 0010 adds the
    # retention setting, NULL (for ever).
    assert raw_rows("users") == [{**user, "retention_days": None} for user in users_before]
    assert raw_rows("pipelines") == pipelines_before
    assert raw_rows("pipeline_runs", LEGACY_RUN_COLUMNS) == runs_before
    # And the values the legacy app wrote, read back with the app's types.
    runs = typed_runs(LEGACY_RUN_COLUMNS + ARTIFACT_COLUMNS)
    assert set(runs) == {run["id"] for run in LEGACY_RUNS}
    for expected in LEGACY_RUNS:
        row = runs[expected["id"]]
        for column, value in expected.items():
            assert row[column] == value, f"{expected['status']} run: {column}"
        assert row["pipeline_id"] == PIPELINE_ID
        assert row["user_id"] == USER_ID
        assert {column: row[column] for column in ARTIFACT_COLUMNS} == dict.fromkeys(ARTIFACT_COLUMNS)

    # The ORM (which describes head) reads the legacy rows without complaint.
    completed = db.session.get(PipelineRun, COMPLETED_RUN_ID)
    assert completed is not None
    assert completed.status == "completed"
    assert completed.final_output == MARKDOWN_OUTPUT
    assert completed.variables == LEGACY_RUNS[0]["variables"]
    assert completed.artifact_data is None
    assert completed.cost is None and completed.cost_source is None and completed.model is None
    assert completed.input_tokens is None and completed.output_tokens is None
    assert completed.created_at == T0 and completed.created_at.tzinfo is not None
    assert completed.completed_at == T1
    assert completed.pipeline.name == "Légacy pipeline"

    failed = db.session.get(PipelineRun, FAILED_RUN_ID)
    assert failed is not None
    assert failed.error == LEGACY_RUNS[1]["error"]
    assert failed.final_output is None and failed.artifact_data is None

    running = db.session.get(PipelineRun, RUNNING_RUN_ID)
    assert running is not None
    assert running.status == "running"
    assert running.final_output is None and running.completed_at is None

    user = db.session.get(User, USER_ID)
    assert user is not None and user.email == "legacy@example.com" and user.created_at == T0


def test_downgrade_to_0001_and_upgrade_again(migration_app: Flask) -> None:
    migrate_to("head")
    user = User(email="roundtrip@example.com", password_hash="hash")
    db.session.add(user)
    db.session.flush()
    pipeline = Pipeline(user_id=user.id, name="Round trip")
    db.session.add(pipeline)
    db.session.flush()
    run = PipelineRun(
        pipeline_id=pipeline.id,
        user_id=user.id,
        status="completed",
        input="Write a haiku",
        final_output="Autumn moonlight —\na worm digs silently\ninto the chestnut.",
        artifact_data={
            "steps": [
                {
                    "agentId": "a1",
                    "agentName": "Poet",
                    "output": "Autumn moonlight —",
                    "stepOrder": 1,
                    "model": "gpt-4o-mini",
                    "inputTokens": 10,
                    "outputTokens": 2,
                    "cost": "0.000000500000",
                }
            ],
            "finalOutput": "Autumn moonlight —\na worm digs silently\ninto the chestnut.",
        },
        model="gpt-4o-mini",
        input_tokens=10,
        output_tokens=2,
        cost=Decimal("0.000000500000"),
        cost_source="computed",
        completed_at=T1,
        listed_at=T1,
    )
    db.session.add(run)
    db.session.commit()
    run_id, final_output = run.id, run.final_output
    db.session.remove()
    stored = db.session.get(PipelineRun, run_id)
    assert stored is not None and stored.cost == Decimal("0.000000500000")

    migrate_down_to("0001")

    assert alembic_versions() == ["0001"]
    assert table_names() == TABLES_0001 | {"alembic_version"}
    assert column_names("pipeline_runs") == set(LEGACY_RUN_COLUMNS)
    assert LIST_INDEX not in index_names("pipeline_runs")
    assert check_constraint_names("pipeline_runs") == {"ck_pipeline_runs_status"}
    rows = raw_rows("pipeline_runs", ("id", "status", "final_output"))
    assert rows == [{"id": run_id, "status": "completed", "final_output": final_output}]

    migrate_to("head")

    assert alembic_versions() == [HEAD]
    assert LIST_INDEX in index_names("pipeline_runs")
    runs = typed_runs(LEGACY_RUN_COLUMNS + ARTIFACT_COLUMNS)
    assert list(runs) == [run_id]
    row = runs[run_id]
    assert row["final_output"] == final_output
    assert row["completed_at"] == T1
    assert {column: row[column] for column in ARTIFACT_COLUMNS} == dict.fromkeys(ARTIFACT_COLUMNS)
    reloaded = db.session.get(PipelineRun, run_id)
    assert reloaded is not None
    assert reloaded.artifact_data is None and reloaded.cost is None
    assert reloaded.final_output == final_output


def test_existing_runs_are_searchable_after_the_upgrade(migration_app: Flask) -> None:
    migrate_to("0001")
    insert_legacy_rows()
    migrate_to("0002")
    with db.engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE pipeline_runs SET artifact_data = :doc WHERE id = :id").bindparams(
                sa.bindparam("doc", type_=JSONDocument)
            ),
            {"id": RUNNING_RUN_ID, "doc": {"steps": [
                {"agentId": "a", "agentName": "Poet", "output": "a worm digs into the chestnut", "stepOrder": 0},
            ], "finalOutput": ""}},
        )

    migrate_to("head")

    user = db.session.get(User, USER_ID)
    assert user is not None

    def found(q: str) -> list[str]:
        return [row.id for row in queries.list_runs(user, ListFilters(query=q), None, 10)]

    assert found("emoji") == [COMPLETED_RUN_ID]  # a legacy final_output
    assert found("translate") == [FAILED_RUN_ID]  # an input
    assert found("chestnuts") == [RUNNING_RUN_ID]  # a step
    assert found("going -chestnut") == []
    assert search.snippets(user, "chestnut", [RUNNING_RUN_ID])[RUNNING_RUN_ID].part == "Step 1 · Poet"


def test_models_match_migrated_schema(migration_app: Flask) -> None:
    """`flask db check`: autogenerate finds nothing to migrate after upgrading to head."""
    migrate_to("head")
    try:
        check()
    except SystemExit as exit_:  # Flask-Migrate logs the diffs and exits 1
        pytest.fail(f"`flask db check` found differences (exit {exit_.code}); see the log above")


@pytest.mark.postgres_only
def test_autogenerate_compare_is_empty_on_postgres(migration_app: Flask) -> None:
    """The same comparison, made directly, so a failure lists the differences."""
    migrate_to("head")
    with db.engine.connect() as connection:
        # As env.py compares: without the search objects, which are not models.
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_name": search.include_name}
        )
        assert compare_metadata(context, db.metadata) == []


def test_downgrade_to_base_leaves_no_tables(migration_app: Flask) -> None:
    migrate_to("head")

    migrate_down_to("base")

    assert table_names() == {"alembic_version"}  # Alembic keeps its own table, empty
    assert alembic_versions() == []


@pytest.mark.postgres_only
def test_cost_column_is_numeric_18_12(migration_app: Flask) -> None:
    migrate_to("head")
    with db.engine.connect() as connection:
        column = connection.execute(
            sa.text(
                "SELECT data_type, numeric_precision, numeric_scale, is_nullable "
                "FROM information_schema.columns "
                "WHERE table_schema = current_schema() AND table_name = 'pipeline_runs' "
                "AND column_name = 'cost'"
            )
        ).one()
    assert tuple(column) == ("numeric", 18, 12, "YES")


@pytest.mark.postgres_only
def test_json_columns_are_jsonb(migration_app: Flask) -> None:
    migrate_to("head")
    with db.engine.connect() as connection:
        types = dict(
            connection.execute(
                sa.text(
                    "SELECT column_name, data_type FROM information_schema.columns "
                    "WHERE table_schema = current_schema() AND table_name = 'pipeline_runs' "
                    "AND column_name IN ('variables', 'artifact_data')"
                )
            ).all()
        )
    assert types == {"variables": "jsonb", "artifact_data": "jsonb"}
