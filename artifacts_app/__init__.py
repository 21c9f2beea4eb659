"""Artifacts: keep every run of your multi-step LLM pipelines and browse it later."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

from . import compression, config, rendering, security_headers, urls
from .converters import IdConverter
from .extensions import csrf, db, login_manager, migrate
from .pricing import PriceTable
from .sessions import PagesOnlySessionInterface
from .throttle import make_throttle

__version__ = "0.1.0"

PACKAGE_ROOT = Path(__file__).resolve().parent
PROJECT_ROOT = PACKAGE_ROOT.parent


def resource_folder(name: str) -> Path:
    """templates, static or migrations: inside the package when installed from a wheel (pyproject.toml
    ships them there), else the checkout's top-level folder (editable install, `make run`, the tests)."""
    shipped = PACKAGE_ROOT / name
    return shipped if shipped.is_dir() else PROJECT_ROOT / name


def create_app(test_config: dict[str, Any] | None = None, instance_path: str | Path | None = None) -> Flask:
    """Build the app: settings from the environment (or test_config), extensions, blueprints, CLI.

    The instance folder (SQLite default, generated secret key, render cache) is `instance_path`,
    else INSTANCE_PATH from the environment, else Flask's choice: instance/ in a checkout,
    <prefix>/var/artifacts_app-instance for an installed wheel.
    """
    chosen = instance_path or os.environ.get("INSTANCE_PATH") or None
    app = Flask(
        __name__,
        instance_path=str(Path(chosen).resolve()) if chosen else None,
        instance_relative_config=True,
        template_folder=str(resource_folder("templates")),
        static_folder=str(resource_folder("static")),
    )
    app.url_map.converters["id"] = IdConverter
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)
    app.config.from_mapping(config.load_settings(Path(app.instance_path)))
    if test_config:
        app.config.from_mapping(test_config)

    if app.config["TRUSTED_PROXIES"]:
        hops = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]

    # First of the response hooks, so it runs last: it compresses what every other hook left (BREACH rule inside).
    compression.init_app(app)
    app.extensions["price_table"] = PriceTable.load(app.config["PRICES_FILE"])
    # One store per process: a `limits` store holds its counters (or its Redis pool) itself.
    app.extensions["login_throttle"] = make_throttle(app.config["RATELIMIT_STORAGE_URI"])
    db.init_app(app)
    migrate.init_app(app, db, directory=str(resource_folder("migrations")))
    login_manager.init_app(app)
    csrf.init_app(app)
    rendering.init_app(app)

    from . import models
    from .api import bp as api_bp
    from .artifacts import bp as artifacts_bp
    from .auth import bp as auth_bp
    from .errors import register_error_handlers
    from .formatting import register_filters
    from .health import bp as health_bp
    from .settings import bp as settings_bp
    from .usage import bp as usage_bp

    for blueprint in (health_bp, auth_bp, artifacts_bp, usage_bp, settings_bp, api_bp):
        app.register_blueprint(blueprint)
    app.session_interface = PagesOnlySessionInterface(api_bp.url_prefix or "")
    register_error_handlers(app)
    register_filters(app)
    urls.init_app(app)  # an untrusted Host is answered 400 before any other hook sees the request
    security_headers.init_app(app)  # CSP, nosniff, frame and referrer policy, HSTS over HTTPS

    @app.after_request
    def private_by_default(response: Response) -> Response:
        """Pages hold private data and CSRF tokens: never cached, never served back after logout."""
        if request.endpoint != "static" and "Cache-Control" not in response.headers:
            response.headers["Cache-Control"] = "no-store"
        return response

    from .cli import register_cli

    register_cli(app)

    @login_manager.user_loader
    def load_user(session_token: str) -> models.User | None:
        from .queries import user_by_session_token

        return user_by_session_token(session_token)

    return app
