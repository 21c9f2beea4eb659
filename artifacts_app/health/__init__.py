"""The health check a load balancer polls."""

from flask import Blueprint

bp = Blueprint("health", __name__)

from . import views  # noqa: E402,F401  (routes register on bp)
