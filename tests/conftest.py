"""Fixtures: every database test runs on SQLite and, when TEST_DATABASE_URL is set, on PostgreSQL."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from hypothesis import configuration as hypothesis_configuration

# Set before the app is imported so no test writes a secret key into the real instance/ folder.
os.environ.setdefault("SECRET_KEY", "test-secret-key")
os.environ.pop("DATABASE_URL", None)
os.environ.pop("PRICES_FILE", None)

from artifacts_app import create_app
from artifacts_app.extensions import db
from artifacts_app.models import User
from tests import databases
from tests.factories import make_user
from tests.http_helpers import IsolatedClient, log_in

ENGINES = ("sqlite", "postgresql")


def make_app(database_url: str, instance_path: Path, **overrides: object) -> Flask:
    """An app on the given database, with test settings, its instance folder (render cache) in instance_path."""
    config = {
        "TESTING": True,
        "SQLALCHEMY_DATABASE_URI": database_url,
        "SQLALCHEMY_ENGINE_OPTIONS": {},
        # scrypt costs ~0.1 s a hash by design; tests create hundreds of users.
        "PASSWORD_HASH_METHOD": "pbkdf2:sha256:1000",
        **overrides,
    }
    app = create_app(config, instance_path=instance_path)
    assert app.instance_path == str(instance_path.resolve()), app.instance_path
    return app


def migrate(database_url: str, instance_path: Path, revision: str = "head") -> None:
    """Run `flask db upgrade` (through Flask-Migrate's API) against a database."""
    from flask_migrate import upgrade

    app = make_app(database_url, instance_path)
    with app.app_context():
        upgrade(revision=revision)
        dispose(app)


def dispose(app: Flask) -> None:
    """Close the app's sessions and pooled connections (PostgreSQL has a connection limit)."""
    db.session.remove()
    for engine in db.engines.values():
        engine.dispose()


def worker_name(config: pytest.Config) -> str:
    """The pytest-xdist worker id ("gw0"), or "main" without xdist."""
    return os.environ.get("PYTEST_XDIST_WORKER", "main")


@pytest.fixture(scope="session", autouse=True)
def instance_outside_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Any app a test builds with create_app() directly gets a temporary instance folder, not instance/."""
    path = tmp_path_factory.mktemp("instance")
    previous = os.environ.get("INSTANCE_PATH")
    os.environ["INSTANCE_PATH"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("INSTANCE_PATH", None)
    else:
        os.environ["INSTANCE_PATH"] = previous


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per session; each test gets a copy."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    migrate(f"sqlite:///{path}", path.parent)
    return path


@pytest.fixture(scope="session")
def postgres_url(pytestconfig: pytest.Config) -> Iterator[str]:
    """This worker's PostgreSQL database, migrated to head once per session."""
    base = databases.postgres_base_url()
    if base is None:
        if databases.in_ci():
            pytest.fail(f"{databases.POSTGRES_URL_VARIABLE} must be set when CI=true")
        pytest.skip(f"{databases.POSTGRES_URL_VARIABLE} is not set")
    # The pid too: two pytest runs on one server (a developer and CI, say) must not share a database.
    name = f"{sa.engine.make_url(base).database}_{worker_name(pytestconfig)}_{os.getpid()}"
    try:
        url = databases.create_postgres_database(base, name)
    except sa.exc.OperationalError as error:
        if databases.in_ci():
            pytest.fail(f"PostgreSQL is unreachable under CI: {error}")
        pytest.skip(f"PostgreSQL is unreachable: {error}")
    migrate(url, Path(os.environ.get("TMPDIR", "/tmp")))
    yield url
    databases.drop_postgres_database(base, url)


def truncate_all(app: Flask) -> None:
    """Empty every table but Alembic's, so the next test starts clean on the shared database."""
    tables = ", ".join(f'"{table.name}"' for table in db.metadata.sorted_tables)
    with db.engine.begin() as connection:
        # A connection the test left open (an unconsumed streaming response, a thread) would
        # hold its locks and hang TRUNCATE; this database is this worker's alone, so end them.
        connection.execute(sa.text(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid() "
            "AND usename = current_user AND backend_type = 'client backend'"
        ))
        connection.execute(sa.text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


def pytest_configure(config: pytest.Config) -> None:
    # Hypothesis keeps a cache in ./.hypothesis even without an example database: the tests
    # write nothing into the checkout, so it goes to a temporary folder (in every xdist worker).
    hypothesis_configuration.set_hypothesis_home_dir(tempfile.mkdtemp(prefix="artifacts-hypothesis-"))
    config.addinivalue_line(
        "markers", "engine_agnostic: the database is incidental to what the test checks; it runs on SQLite only"
    )


def only_on_sqlite(metafunc: pytest.Metafunc) -> None:
    """Parametrize engine_name with SQLite alone (test ids keep "[sqlite", which the summary counts)."""
    # As a mark, so engine_name's own params (both engines) give way to it.
    metafunc.definition.add_marker(pytest.mark.parametrize("engine_name", ["sqlite"], indirect=True))


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked engine_agnostic (and every browser test, see tests/browser/conftest.py) runs once, on SQLite."""
    if "engine_name" in metafunc.fixturenames and metafunc.definition.get_closest_marker("engine_agnostic"):
        only_on_sqlite(metafunc)


@pytest.fixture(params=ENGINES)
def engine_name(request: pytest.FixtureRequest) -> str:
    """Which database this run of the test uses; tests marked postgres_only skip SQLite."""
    if request.param == "sqlite" and request.node.get_closest_marker("postgres_only"):
        pytest.skip("about a PostgreSQL feature")
    return request.param


@pytest.fixture
def database_url(engine_name: str, request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database for this test."""
    if engine_name == "sqlite":
        path = tmp_path / "test.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def app(database_url: str, engine_name: str, tmp_path: Path) -> Iterator[Flask]:
    """The app on a fresh database, inside an app context."""
    app = make_app(database_url, tmp_path)
    # Each request in its own app context, as under a real server (see IsolatedClient).
    app.test_client_class = IsolatedClient
    with app.app_context():
        yield app
        db.session.rollback()
        if engine_name == "postgresql":
            dispose(app)  # our own pooled connections go first, cleanly
            truncate_all(app)
        dispose(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def user(app: Flask) -> User:
    """A user of the app (reader@example.com), committed."""
    return make_user("reader@example.com")


@pytest.fixture
def signed_in(client: FlaskClient, user: User) -> FlaskClient:
    """The client, logged in as `user` through the login form."""
    log_in(client, user.email)
    return client


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    return app.test_cli_runner()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Say how many tests ran on each engine, so CI's log shows the PostgreSQL runs happened."""
    counts = {engine: {"passed": 0, "skipped": 0, "failed": 0} for engine in ENGINES}
    for outcome in ("passed", "skipped", "failed"):
        for report in terminalreporter.stats.get(outcome, []):
            if report.when != "call" and outcome != "skipped":
                continue
            for engine in ENGINES:
                if f"[{engine}" in report.nodeid or f"-{engine}]" in report.nodeid:
                    counts[engine][outcome] += 1
    browser = {"passed": 0, "skipped": 0, "failed": 0}
    for outcome in browser:
        browser[outcome] = sum(
            1 for report in terminalreporter.stats.get(outcome, [])
            if "tests/browser/" in report.nodeid and (report.when == "call" or outcome == "skipped")
        )
    terminalreporter.write_sep("-", "database engines")
    for engine, tally in counts.items():
        terminalreporter.write_line(
            f"{engine}: {tally['passed']} passed, {tally['failed']} failed, {tally['skipped']} skipped"
        )
    terminalreporter.write_line(
        f"browser (Chromium): {browser['passed']} passed, {browser['failed']} failed, {browser['skipped']} skipped"
    )
