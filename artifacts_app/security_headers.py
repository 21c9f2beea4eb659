"""The browser's defences, on every response the app sends: pages, fragments, errors, static, API, downloads.

Written here rather than with flask-talisman 1.1.0, which was checked and does not fit: it redirects
plain-http requests to https by default, and on every request it sets SESSION_COOKIE_SECURE back to
True (undoing INSECURE_COOKIES for `make run` and the browser tests' plain-http server); it trusts a
client's X-Forwarded-Proto header directly, bypassing TRUSTED_PROXIES; and it adds the deprecated
X-XSS-Protection header. What is needed is a dozen lines.
"""

from __future__ import annotations

from flask import Flask, Response, request

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    )
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    # frame-ancestors for browsers that predate it.
    "X-Frame-Options": "DENY",
}

HSTS = "max-age=31536000; includeSubDomains"


def set_security_headers(response: Response) -> Response:
    """Every header of HEADERS, and HSTS when the request came over HTTPS (ProxyFix says so when trusted)."""
    for name, value in HEADERS.items():
        response.headers[name] = value
    if request.is_secure:
        response.headers["Strict-Transport-Security"] = HSTS
    return response


def init_app(app: Flask) -> None:
    app.after_request(set_security_headers)
