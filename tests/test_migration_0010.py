"""Migration 0010 on an account already stored: it keeps its runs for ever until it says otherwise,
its runs survive the copy of the users table (SQLite), and the downgrade drops only the setting."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Flask

from artifacts_app.extensions import db
from tests.test_migrations import (  # noqa: F401 (fixtures)
    LEGACY_RUNS,
    USER_ID,
    check_constraint_names,
    column_names,
    empty_database_url,
    insert_legacy_rows,
    migrate_down_to,
    migrate_to,
    migration_app,
)


def scalar(sql: str) -> object:
    with db.engine.connect() as connection:
        return connection.execute(sa.text(sql)).scalar_one()


def test_existing_users_keep_their_runs_for_ever_and_the_setting_is_bounded(
    migration_app: Flask, engine_name: str
) -> None:
    migrate_to("0001")
    insert_legacy_rows()
    migrate_to("0009")

    migrate_to("0010")

    assert scalar(f"SELECT retention_days FROM users WHERE id = '{USER_ID}'") is None
    assert scalar("SELECT count(*) FROM pipeline_runs") == len(LEGACY_RUNS)  # the table copy cascaded nothing
    assert "ck_users_retention_days" in check_constraint_names("users")
    for days, accepted in ((1, True), (3650, True), (0, False), (3651, False), (-7, False)):
        with db.engine.connect() as connection, connection.begin() as transaction:
            try:
                connection.execute(sa.text("UPDATE users SET retention_days = :days"), {"days": days})
            except sa.exc.IntegrityError:
                assert not accepted, days
            else:
                assert accepted, days
            transaction.rollback()


def test_the_downgrade_drops_the_setting_and_keeps_the_users_and_their_runs(migration_app: Flask) -> None:
    migrate_to("0001")
    insert_legacy_rows()
    migrate_to("0010")
    with db.engine.begin() as connection:
        connection.execute(sa.text("UPDATE users SET retention_days = 30"))

    migrate_down_to("0009")

    assert "retention_days" not in column_names("users")
    assert "ck_users_retention_days" not in check_constraint_names("users")
    assert scalar("SELECT count(*) FROM users") == 1
    assert scalar("SELECT count(*) FROM pipeline_runs") == len(LEGACY_RUNS)
    migrate_to("0010")
    assert scalar(f"SELECT retention_days FROM users WHERE id = '{USER_ID}'") is None
