"""The JSON API for pipeline executors: bearer tokens, runs in, runs out, errors as JSON."""

from flask import Blueprint

from ..extensions import csrf

bp = Blueprint("api", __name__, url_prefix="/api/v1")
# Bearer tokens, not cookies, authenticate here: a cross-site form cannot forge one.
csrf.exempt(bp)

from . import errors, views  # noqa: E402,F401  (handlers and routes register on bp)
