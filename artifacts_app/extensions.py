"""Extensions, created unbound here and bound to the app in create_app()."""

import select
import sqlite3
from typing import TYPE_CHECKING, Any

from flask import has_request_context, request
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import MetaData, event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import DeclarativeBase
from sqlalchemy.pool import Pool

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


# psycopg prepares a statement it has run 5 times, which saves PostgreSQL parsing it again; this
# session setting keeps each execution planned with its values all the same. A generic plan, blind
# to them, took a rare search word for a common one and walked the whole list (1.3 s at 100,000
# runs, against under 10 ms with the GIN index; bench/find_runs.py).
CUSTOM_PLANS = "-c plan_cache_mode=force_custom_plan"


@event.listens_for(Engine, "do_connect")
def plan_every_execution(dialect: Any, connection_record: Any, cargs: Any, cparams: dict[str, Any]) -> None:
    """psycopg: every session plans each execution of a prepared statement with its values (a startup
    parameter: no extra statement); what DATABASE_URL's own options say about it wins."""
    if dialect.driver == "psycopg" and "plan_cache_mode" not in cparams.get("options", ""):
        cparams["options"] = f"{cparams.get('options', '')} {CUSTOM_PLANS}".strip()


def closed_by_server(dbapi_connection: Any) -> bool:
    """Whether an idle psycopg connection is unusable: closed here, or sent something unasked, which on
    an idle session (no LISTEN) is the server's goodbye (a restart, a terminated backend) or the end
    of the stream. Asks the kernel (a poll that does not wait), not the server."""
    if dbapi_connection.closed or dbapi_connection.broken:
        return True
    poller = select.poll()
    poller.register(dbapi_connection.fileno(), select.POLLIN)
    return bool(poller.poll(0))


@event.listens_for(Pool, "checkout")
def replace_connection_closed_by_server(dbapi_connection: Any, connection_record: Any, proxy: Any) -> None:
    """psycopg: a pooled connection the server has closed is replaced before use (SQLAlchemy makes a
    new one when this raises DisconnectionError), so the first request after a restart is served.

    This stands in for pool_pre_ping, whose ping is a round trip on every checkout, a third of the
    statements of a one-shot run (bench/README.md, "Ingestion"). A server that stops or restarts,
    or ends a session, closes its socket, which the kernel reports at once; a server that vanishes
    without a word is found by the statement's own failure, as a ping would find it.
    """
    if type(dbapi_connection).__module__.startswith("psycopg") and closed_by_server(dbapi_connection):
        raise DisconnectionError("the database server closed this pooled connection")


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
