"""Signing in and out, signing up, and confirming the password again."""

from flask import Blueprint

bp = Blueprint("auth", __name__)

from . import views  # noqa: E402,F401  (routes register on bp)
