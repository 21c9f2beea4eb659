"""Extensions, created unbound here and bound to the app in create_app()."""

import sqlite3
from typing import TYPE_CHECKING, Any

from flask import has_request_context, request
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase

# Named constraints: SQLite migrations (batch mode) can only drop or alter what has a name.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


db = SQLAlchemy(model_class=Base)
# db.Model is made at run time from Base, so a type checker cannot see it; to it, models are Bases.
if TYPE_CHECKING:
    Model = Base
else:
    Model = db.Model
migrate = Migrate(render_as_batch=True, compare_type=True)
login_manager = LoginManager()
csrf = CSRFProtect()


# How long a SQLite writer waits for another to finish before giving up ("database is locked").
SQLITE_BUSY_TIMEOUT_MS = 15_000
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


@event.listens_for(Engine, "connect")
def configure_sqlite(dbapi_connection: Any, connection_record: Any) -> None:
    """SQLite: foreign keys on, and a writer waits for another one to finish rather than failing."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        # Foreign keys (and so ON DELETE CASCADE) are ignored unless each connection asks.
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.close()


@event.listens_for(Engine, "connect")
def plan_every_statement(dbapi_connection: Any, connection_record: Any) -> None:
    """psycopg: never prepare statements, so PostgreSQL plans each one with its values.

    psycopg prepares a statement run five times, and PostgreSQL may then reuse a generic plan that
    cannot see the values. For a search that is the wrong plan: without the words, a rare word is
    estimated as common, and the list's index is walked row by row to the end (1.3 s at 100,000
    runs, bench/find_runs.py) instead of the GIN index finding the few matches (under 10 ms).
    """
    if type(dbapi_connection).__module__.startswith("psycopg"):
        dbapi_connection.prepare_threshold = None


@event.listens_for(Engine, "begin")
def begin_sqlite_write_transaction(connection: Any) -> None:
    """A request that may write takes SQLite's one write lock when its transaction starts.

    Otherwise the driver begins a deferred transaction at the first write, and one that has read
    cannot wait for the lock: if another writer holds it SQLite refuses at once ("database is
    locked"), which the security scan saw as 500s under concurrent API writes. Taken up front, the
    lock is waited for (SQLITE_BUSY_TIMEOUT_MS). Reads (GET) and work outside a request keep the
    driver's deferred transactions, so they never block a writer.
    """
    if connection.dialect.name == "sqlite" and has_request_context() and request.method in WRITE_METHODS:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def lock_for_writing() -> None:
    """SQLite, outside a request: begin the transaction now, holding the database's write lock, so a
    writer at the same moment waits for this work (or it for the writer) instead of either failing
    with "database is locked"; and so savepoints nest inside it (the driver begins a transaction only
    at the first write, and releasing a savepoint taken outside one commits)."""
    connection = db.session.connection()
    if connection.dialect.name == "sqlite" and not connection.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        connection.exec_driver_sql("BEGIN IMMEDIATE")
