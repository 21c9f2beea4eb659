"""Settings from the environment, the app factory's use of them, and the `flask` entry point.

None of these need a database, so they run once rather than once per engine.
"""

from __future__ import annotations

import importlib.util
import os
import stat
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest
from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from artifacts_app import PROJECT_ROOT, config, create_app
from artifacts_app.pricing import PriceTable, calculate_cost

SETTING_VARIABLES = (
    "SIGNUP_ENABLED",
    "RENDER_LIMIT_BYTES",
    "MAX_CONTENT_LENGTH",
    "INSECURE_COOKIES",
    "TRUSTED_PROXIES",
    "PRICES_FILE",
    "RATELIMIT_STORAGE_URI",
    "CACHE_REDIS_URL",
    "PUBLIC_BASE_URL",
    "TRUSTED_HOSTS",
    "DATABASE_CONNECT_TIMEOUT",
    "DATABASE_POOL_TIMEOUT",
    "DATABASE_STATEMENT_TIMEOUT",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No setting variable is set, except SECRET_KEY (conftest's, so no key file is written)."""
    for name in (*SETTING_VARIABLES, "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def sqlite_config(tmp_path: Path) -> dict[str, object]:
    """A test_config that keeps create_app off the real instance/ database."""
    return {"TESTING": True, "SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp_path / 'app.db'}"}


# ---------------------------------------------------------------- database_url


def test_database_url_defaults_to_sqlite_in_the_instance_folder(tmp_path: Path) -> None:
    expected = f"sqlite:///{tmp_path / 'artifacts.db'}"
    assert config.database_url(None, tmp_path) == expected
    assert config.database_url("", tmp_path) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgresql://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgres://u:p@h:5433/db?sslmode=require", "postgresql+psycopg://u:p@h:5433/db?sslmode=require"),
        ("postgresql://u:p@h/db?sslmode=require", "postgresql+psycopg://u:p@h/db?sslmode=require"),
    ],
    # Plain ids: conftest's per-engine tally counts any test id containing "[postgresql" or "[sqlite".
    ids=["postgres-scheme", "long-scheme", "postgres-scheme-port-query", "long-scheme-query"],
)
def test_database_url_makes_the_psycopg3_driver_explicit(raw: str, expected: str, tmp_path: Path) -> None:
    assert config.database_url(raw, tmp_path) == expected


@pytest.mark.parametrize(
    "raw",
    ["postgresql+psycopg://u:p@h/db", "sqlite:///x", "sqlite:////var/lib/artifacts/artifacts.db"],
    ids=["psycopg-driver", "relative-sqlite-file", "absolute-sqlite-file"],
)
def test_database_url_keeps_an_explicit_driver(raw: str, tmp_path: Path) -> None:
    assert config.database_url(raw, tmp_path) == raw


# ---------------------------------------------------------------- secret_key


def test_secret_key_from_the_environment_wins_and_writes_no_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("SECRET_KEY", "from-the-environment")
    (tmp_path / "secret_key").write_text("from-the-file")

    assert config.secret_key(tmp_path) == "from-the-environment"

    empty = tmp_path / "empty"
    empty.mkdir()
    assert config.secret_key(empty) == "from-the-environment"
    assert not (empty / "secret_key").exists()


def test_secret_key_is_generated_once_into_a_private_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)

    key = config.secret_key(tmp_path)

    key_file = tmp_path / "secret_key"
    assert len(key) >= 32
    assert key_file.read_text().strip() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600


def test_secret_key_survives_a_restart(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)

    first = config.secret_key(tmp_path)
    second = config.secret_key(tmp_path)

    assert second == first


def test_secret_key_differs_between_instance_folders(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()

    assert config.secret_key(tmp_path / "one") != config.secret_key(tmp_path / "two")


def test_secret_key_never_returns_an_empty_key_from_an_empty_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)
    (tmp_path / "secret_key").write_text("")

    assert config.secret_key(tmp_path) != ""


def test_app_uses_the_generated_secret_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("SECRET_KEY", raising=False)

    settings = config.load_settings(tmp_path)

    assert settings["SECRET_KEY"] == (tmp_path / "secret_key").read_text().strip()
    assert config.load_settings(tmp_path)["SECRET_KEY"] == settings["SECRET_KEY"]


# ---------------------------------------------------------------- env_flag, env_int


@pytest.mark.parametrize("value", ["1", "true", "TRUE", "yes", "Yes", "on", " on "])
def test_env_flag_reads_true_words(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTIFACTS_TEST_FLAG", value)
    assert config.env_flag("ARTIFACTS_TEST_FLAG") is True


@pytest.mark.parametrize("value", ["0", "false", "no", "off", "anything"])
def test_env_flag_reads_anything_else_as_false(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTIFACTS_TEST_FLAG", value)
    assert config.env_flag("ARTIFACTS_TEST_FLAG", default=True) is False


@pytest.mark.parametrize("value", [None, "", "   "])
def test_env_flag_unset_or_blank_is_the_default(value: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if value is None:
        monkeypatch.delenv("ARTIFACTS_TEST_FLAG", raising=False)
    else:
        monkeypatch.setenv("ARTIFACTS_TEST_FLAG", value)
    assert config.env_flag("ARTIFACTS_TEST_FLAG") is False
    assert config.env_flag("ARTIFACTS_TEST_FLAG", default=True) is True


def test_env_int_reads_an_integer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTIFACTS_TEST_INT", " 42 ")
    assert config.env_int("ARTIFACTS_TEST_INT", 7) == 42


@pytest.mark.parametrize("value", [None, "", "  "])
def test_env_int_unset_or_blank_is_the_default(value: str | None, monkeypatch: pytest.MonkeyPatch) -> None:
    if value is None:
        monkeypatch.delenv("ARTIFACTS_TEST_INT", raising=False)
    else:
        monkeypatch.setenv("ARTIFACTS_TEST_INT", value)
    assert config.env_int("ARTIFACTS_TEST_INT", 7) == 7


@pytest.mark.parametrize("value", ["abc", "4.5", "64k", "0x10"])
def test_env_int_refuses_a_non_integer_naming_the_variable(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTIFACTS_TEST_INT", value)
    with pytest.raises(RuntimeError, match="ARTIFACTS_TEST_INT must be an integer"):
        config.env_int("ARTIFACTS_TEST_INT", 7)


def test_env_int_refuses_a_value_below_the_minimum(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ARTIFACTS_TEST_INT", "0")
    with pytest.raises(RuntimeError, match="ARTIFACTS_TEST_INT must be at least 1"):
        config.env_int("ARTIFACTS_TEST_INT", 7)
    monkeypatch.setenv("ARTIFACTS_TEST_INT", "-1")
    with pytest.raises(RuntimeError, match="ARTIFACTS_TEST_INT must be at least 0"):
        config.env_int("ARTIFACTS_TEST_INT", 7, minimum=0)
    assert config.env_int("ARTIFACTS_TEST_INT", 7, minimum=-1) == -1


@pytest.mark.parametrize("name", ["RENDER_LIMIT_BYTES", "MAX_CONTENT_LENGTH", "TRUSTED_PROXIES",
                                  "DATABASE_CONNECT_TIMEOUT", "DATABASE_STATEMENT_TIMEOUT"])
def test_a_bad_integer_setting_stops_start_up(name: str, clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv(name, "lots")
    with pytest.raises(RuntimeError, match=name):
        config.load_settings(tmp_path)
    with pytest.raises(RuntimeError, match=name):
        create_app(sqlite_config(tmp_path))


# ---------------------------------------------------------------- engine_options


def test_engine_options_on_postgresql_default_to_timeouts_that_answer_within_5_seconds(
    clean_env: pytest.MonkeyPatch,
) -> None:
    options = config.engine_options("postgresql+psycopg://u:p@h/db")
    assert options == {  # no pool_pre_ping: extensions.replace_connection_closed_by_server does it without a ping
        "pool_timeout": 1,
        "connect_args": {"connect_timeout": 3, "options": "-c statement_timeout=30000"},
    }
    assert options["pool_timeout"] + options["connect_args"]["connect_timeout"] < 5


def test_engine_options_read_the_environment(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DATABASE_CONNECT_TIMEOUT", "10")
    clean_env.setenv("DATABASE_POOL_TIMEOUT", "4")
    clean_env.setenv("DATABASE_STATEMENT_TIMEOUT", "0")
    options = config.engine_options("postgresql+psycopg://u:p@h/db")
    assert options["pool_timeout"] == 4
    assert options["connect_args"] == {"connect_timeout": 10, "options": "-c statement_timeout=0"}


def test_engine_options_keep_what_database_url_itself_says(clean_env: pytest.MonkeyPatch) -> None:
    args = config.engine_options(
        "postgresql+psycopg://u:p@h/db?connect_timeout=7&options=-c%20search_path%3Dapp")["connect_args"]
    # Left out, so the URL's own connect_timeout stands; its options are kept and extended.
    assert args == {"options": "-c search_path=app -c statement_timeout=30000"}
    given = config.engine_options("postgresql+psycopg://u:p@h/db?options=-c%20statement_timeout%3D5s")
    assert given["connect_args"]["options"] == "-c statement_timeout=5s"


def test_engine_options_leave_sqlite_as_it_was(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("DATABASE_STATEMENT_TIMEOUT", "5")
    assert config.engine_options(f"sqlite:///{tmp_path / 'app.db'}") == {"pool_pre_ping": True}
    assert config.load_settings(tmp_path)["SQLALCHEMY_ENGINE_OPTIONS"] == {"pool_pre_ping": True}


def test_a_connect_timeout_below_libpqs_minimum_stops_start_up(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("DATABASE_CONNECT_TIMEOUT", "1")  # libpq would silently make it 2
    with pytest.raises(RuntimeError, match="DATABASE_CONNECT_TIMEOUT must be at least 2"):
        config.load_settings(tmp_path)


# ---------------------------------------------------------------- load_settings


def test_load_settings_defaults(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    settings = config.load_settings(tmp_path)

    assert settings["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'artifacts.db'}"
    assert settings["SIGNUP_ENABLED"] is False
    assert settings["RENDER_LIMIT_BYTES"] == 65536
    assert settings["MAX_CONTENT_LENGTH"] == 16 * 1024 * 1024
    assert settings["SESSION_COOKIE_SECURE"] is True
    assert settings["SESSION_COOKIE_HTTPONLY"] is True
    assert settings["SESSION_COOKIE_SAMESITE"] == "Lax"
    assert settings["TRUSTED_PROXIES"] == 0
    assert settings["PRICES_FILE"] is None
    assert settings["RATELIMIT_STORAGE_URI"] is None
    assert settings["CACHE_REDIS_URL"] is None


def test_load_settings_reads_the_environment(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("DATABASE_URL", "postgres://u:p@h/db")
    clean_env.setenv("SIGNUP_ENABLED", "yes")
    clean_env.setenv("RENDER_LIMIT_BYTES", "1024")
    clean_env.setenv("MAX_CONTENT_LENGTH", "2048")
    clean_env.setenv("TRUSTED_PROXIES", "2")

    settings = config.load_settings(tmp_path)

    assert settings["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@h/db"
    assert settings["SQLALCHEMY_ENGINE_OPTIONS"] == config.engine_options("postgresql+psycopg://u:p@h/db")
    assert settings["SIGNUP_ENABLED"] is True
    assert settings["RENDER_LIMIT_BYTES"] == 1024
    assert settings["MAX_CONTENT_LENGTH"] == 2048
    assert settings["TRUSTED_PROXIES"] == 2


@pytest.mark.parametrize(("value", "secure"), [("1", False), ("true", False), ("0", True), ("", True)])
def test_insecure_cookies_only_when_asked_for(
    value: str, secure: bool, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    clean_env.setenv("INSECURE_COOKIES", value)
    assert config.load_settings(tmp_path)["SESSION_COOKIE_SECURE"] is secure


# ---------------------------------------------------------------- create_app


def test_create_app_without_database_url_uses_sqlite_in_its_instance_folder(clean_env: pytest.MonkeyPatch) -> None:
    app = create_app({"TESTING": True})

    assert app.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{Path(app.instance_path) / 'artifacts.db'}"
    assert app.config["TESTING"] is True


def test_create_app_test_config_overrides_the_environment(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("DATABASE_URL", "postgres://u:p@h/db")

    from_env = create_app({"TESTING": True})
    assert from_env.config["SQLALCHEMY_DATABASE_URI"] == "postgresql+psycopg://u:p@h/db"

    overridden = create_app(sqlite_config(tmp_path))
    assert overridden.config["SQLALCHEMY_DATABASE_URI"] == f"sqlite:///{tmp_path / 'app.db'}"


def test_create_app_trusts_proxies_only_when_configured(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert not isinstance(create_app(sqlite_config(tmp_path)).wsgi_app, ProxyFix)

    clean_env.setenv("TRUSTED_PROXIES", "1")
    app = create_app(sqlite_config(tmp_path))
    assert isinstance(app.wsgi_app, ProxyFix)
    assert (app.wsgi_app.x_for, app.wsgi_app.x_proto, app.wsgi_app.x_host) == (1, 1, 1)


# ---------------------------------------------------------------- PRICES_FILE


OPERATOR_PRICES = """\
[[price]]
model = "acme-large"
provider = "acme"
input = "1.25"
output = "10.00"
effective = 2024-01-01

[aliases]
"acme-large-latest" = "acme-large"
"""


def test_prices_file_adds_a_model_to_the_apps_price_table(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text(OPERATOR_PRICES)
    clean_env.setenv("PRICES_FILE", str(prices))

    app = create_app(sqlite_config(tmp_path))

    table = app.extensions["price_table"]
    assert isinstance(table, PriceTable)
    assert app.config["PRICES_FILE"] == str(prices)
    assert table.resolve("acme-large") == "acme-large"
    assert table.resolve("acme-large-latest") == "acme-large"
    assert calculate_cost("acme-large", 1_000_000, 100_000, table=table) == Decimal("2.250000000000")
    # The packaged prices are still there.
    assert table.resolve("gpt-4o-mini") == "gpt-4o-mini"


def test_without_prices_file_the_new_model_is_unpriced(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    app = create_app(sqlite_config(tmp_path))

    table = app.extensions["price_table"]
    assert table.resolve("acme-large") is None
    assert calculate_cost("acme-large", 1_000_000, 100_000, table=table) is None
    assert table.resolve("gpt-4o-mini") == "gpt-4o-mini"


@pytest.mark.parametrize(
    "content",
    [
        "[[price]\nmodel = ",  # not TOML
        OPERATOR_PRICES.replace('input = "1.25"', "input = 1.25"),  # a float price
        OPERATOR_PRICES.replace('effective = 2024-01-01', 'effective = "2024-01-01"'),  # a quoted date
        OPERATOR_PRICES.replace('output = "10.00"\n', ""),  # a missing field
        OPERATOR_PRICES.replace("provider", "provder"),  # a misspelt field
        "[prices]\n",  # an unknown top-level key
    ],
    ids=["not-toml", "float-price", "quoted-date", "missing-field", "misspelt-field", "unknown-key"],
)
def test_a_malformed_prices_file_stops_start_up(
    content: str, clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    prices = tmp_path / "prices.toml"
    prices.write_text(content)
    clean_env.setenv("PRICES_FILE", str(prices))

    with pytest.raises(ValueError, match=str(prices).replace("\\", "\\\\")):
        create_app(sqlite_config(tmp_path))


def test_a_missing_prices_file_stops_start_up(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.setenv("PRICES_FILE", str(tmp_path / "nowhere.toml"))

    with pytest.raises(ValueError, match="cannot read price file"):
        create_app(sqlite_config(tmp_path))


# ---------------------------------------------------------------- wsgi.py and the flask command


def test_wsgi_module_exposes_the_app(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    database = f"sqlite:///{tmp_path / 'wsgi.db'}"
    clean_env.setenv("DATABASE_URL", database)
    spec = importlib.util.spec_from_file_location("wsgi_under_test", PROJECT_ROOT / "wsgi.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)

    spec.loader.exec_module(module)

    assert isinstance(module.app, Flask)
    assert module.app.config["SQLALCHEMY_DATABASE_URI"] == database
    assert {"users", "demo"} <= set(module.app.cli.commands)


# What the `flask` console script runs (flask.cli:main), started the same way: no FLASK_APP, in the
# checkout, so Flask must find wsgi.py itself. Its instance folder is a temporary one: run as is, it
# would create instance/ and instance/render-cache in the checkout.
FLASK_COMMAND = """
import sys
from flask.cli import main
sys.argv = ["flask", *sys.argv[1:]]
main()
"""


def test_flask_command_finds_the_app_with_no_flags(tmp_path: Path) -> None:
    env = {
        key: value for key, value in os.environ.items()
        if key not in {"FLASK_APP", "PRICES_FILE", *SETTING_VARIABLES}
    }
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
    env["SECRET_KEY"] = "test-secret-key"
    env["INSTANCE_PATH"] = str(tmp_path / "instance")

    result = subprocess.run(
        [sys.executable, "-c", FLASK_COMMAND, "--help"], cwd=PROJECT_ROOT, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )

    assert result.returncode == 0, result.stderr
    assert "Error" not in result.stderr, result.stderr
    commands = {line.split()[0] for line in result.stdout.split("Commands:", 1)[1].splitlines() if line.strip()}
    assert {"users", "demo", "db"} <= commands, result.stdout


def test_instance_path_names_the_instance_folder(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clean_env.delenv("SECRET_KEY")
    clean_env.setenv("INSTANCE_PATH", str(tmp_path / "data"))
    app = create_app({"TESTING": True})
    assert app.instance_path == str((tmp_path / "data").resolve())
    assert (tmp_path / "data" / "secret_key").is_file()  # the generated key lives there, not in the checkout
    assert create_app({"TESTING": True}, instance_path=tmp_path / "other").instance_path == str(tmp_path / "other")


def test_a_request_body_limit_past_what_one_jsonb_document_holds_is_refused_at_start(
    clean_env: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A request's runs go to PostgreSQL as one jsonb document of up to twice the body; jsonb holds at
    most 256 MB, so a larger MAX_CONTENT_LENGTH would turn a big enough request into a 500."""
    clean_env.setenv("MAX_CONTENT_LENGTH", str(100 * 1024 * 1024))
    assert config.load_settings(tmp_path)["MAX_CONTENT_LENGTH"] == 104857600
    clean_env.setenv("MAX_CONTENT_LENGTH", str(100 * 1024 * 1024 + 1))
    with pytest.raises(RuntimeError, match="MAX_CONTENT_LENGTH must be at most 104857600, got 104857601"):
        config.load_settings(tmp_path)
