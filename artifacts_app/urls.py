"""Absolute URLs and the Host header: never trust a host name the operator did not configure.

Flask 3.1 has a TRUSTED_HOSTS setting, but with Werkzeug 3.1 its check cannot match an IPv6 literal
(`[::1]` never equals any list entry, since the entry is cut at its first colon), and when it fails
the request has no URL adapter, so the error page's own `url_for` raises and the visitor gets a 500
instead of a clear 400. So the check is done here, first of all `before_request` hooks, against the
ALLOWED_HOSTS setting (read from the TRUSTED_HOSTS environment variable): an untrusted Host gets the
usual 400 page, or JSON under /api/, and no view ever sees it. Behind a reverse proxy the host is
X-Forwarded-Host only when TRUSTED_PROXIES is set (ProxyFix), so clients cannot pick it themselves.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, Response, current_app, request, url_for

UNTRUSTED_HOST_MESSAGE = "This site does not answer to that host name."


def is_local_path(target: str | None) -> bool:
    """Whether `target` is a path on this site: browsers and werkzeug treat backslashes and control
    characters loosely ("/\\evil" and "/\\t/evil" become "//evil"), so any of those, a scheme or a host
    makes it not one (no open redirects)."""
    if not target or not target.startswith("/") or target.startswith("//"):
        return False
    if "\\" in target or any(ord(char) < 0x20 or ord(char) == 0x7F for char in target):
        return False
    parts = urlsplit(target)
    return not (parts.scheme or parts.netloc)


def external_url(endpoint: str, **values: Any) -> str:
    """The absolute URL of an endpoint: from PUBLIC_BASE_URL when set, else from the (trusted) request host."""
    base = current_app.config.get("PUBLIC_BASE_URL")
    if not base:
        return url_for(endpoint, _external=True, **values)
    parts = urlsplit(base)
    adapter = current_app.url_map.bind(parts.netloc, script_name=parts.path or "/", url_scheme=parts.scheme)
    return adapter.build(endpoint, values, force_external=True)


def _host_name(host: str) -> str:
    """The name part of `host[:port]`, brackets of an IPv6 literal removed, lower case."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.find("]")] if "]" in host else ""
    return host.partition(":")[0]


def host_is_trusted(host: str, trusted: Iterable[str]) -> bool:
    """Whether `host` (a Host header value, port ignored) is one of `trusted`; ".example.com" admits subdomains."""
    name = _host_name(host)
    if not name:
        return False
    for entry in trusted:
        entry = entry.strip().lower()
        if entry.startswith("."):
            suffix = entry[1:]
            if name == suffix or name.endswith(entry):
                return True
        elif name == _host_name(entry) or name == entry.strip("[]"):
            return True
    return False


def reject_untrusted_host() -> Response | None:
    """A clear 400 for a request whose Host (or trusted X-Forwarded-Host) is not configured."""
    # request.host is Werkzeug's: the Host header with invalid characters already turned into "".
    if host_is_trusted(request.host, current_app.config["ALLOWED_HOSTS"]):
        return None
    from .errors import error_response

    return error_response(400, UNTRUSTED_HOST_MESSAGE)


def init_app(app: Flask) -> None:
    """Check the host before any other hook (CSRF, login) can look at the request."""
    app.before_request_funcs.setdefault(None, []).insert(0, reject_untrusted_host)
