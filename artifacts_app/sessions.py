"""The cookie session, for the web pages only."""

from __future__ import annotations

from flask import Flask, Request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface


class PagesOnlySessionInterface(SecureCookieSessionInterface):
    """Flask's signed-cookie session, except on the API: a bearer token authenticates it, and a cookie
    never does, so its requests get Flask's null session (empty; writing to it is an error). An API
    answer then never says `Vary: Cookie`, and no request to it reads a cookie or sets up the cookie's
    signer (5% of a one-shot POST /api/v1/runs in the app, bench/README.md "Fifth pass")."""

    def __init__(self, api_prefix: str) -> None:
        self.api_path = api_prefix.rstrip("/") + "/"

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        # By path: the session opens before the URL is matched, so request.blueprint is not known yet.
        if request.path.startswith(self.api_path):
            return None  # Flask makes it the null session
        return super().open_session(app, request)
