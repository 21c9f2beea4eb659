"""Responses compressed with brotli or gzip when the client accepts it (Flask-Compress), except the
responses where compression would let another site read a secret (BREACH).

What is compressed: HTML pages and fragments, JSON, plain text, Markdown, CSV and JSON Lines, CSS
and JavaScript, from COMPRESS_MIN_SIZE (500 bytes) up, 2xx only. brotli is preferred when the
client offers both (browsers do); gzip for clients that only take gzip. Streamed responses (the
downloads and the list's CSV/JSONL exports) are gzipped chunk by chunk as they are produced: they
stay streamed, without a Content-Length, and are never held whole in memory. Every response
says `Vary: Accept-Encoding`, beside the `Vary: HX-Request` of pages and fragments.

BREACH. An attacker who can make the victim's browser request a page that both echoes text the
attacker chose and holds a secret can learn the secret from the compressed sizes, guess by guess.
Every full page here holds a secret: the CSRF token (in `<body hx-headers>` and the logout form),
and the person's own runs. Flask-WTF does not mask its token per response: the token is the
session's raw token signed with a timestamp, so its first part is the same on every page of a
session and only the timestamp and signature change, once a second. And masking the token would
not protect the run names, inputs and snippets on the same page. So the rule is about the echo:

- A full page is compressed only for GET or HEAD with no query parameter other than the ones in
  NOT_ECHOED (`tab`, whose value is checked against `final` / `step-N` before a 200 shows it, and
  `view`, checked against `rendered` / `raw`). A page with `?q=`, a filter, a cursor, `?next=` and
  so on is sent uncompressed: those are the pages that echo input beside the token (the search
  box, the filter menus, the load-more link).
- An htmx fragment is compressed: it is only ever requested with the `HX-Request` header, which a
  page on another site cannot add to a request to this one (a custom header needs a CORS preflight,
  which this app never grants), and a plain link or form from there gets the full page instead.
- The API is compressed: it is authenticated by a bearer token the browser never adds by itself,
  so another site's requests to it carry no credentials and get nothing private. Its answers under
  ONE_ROUND_TRIP_BYTES are not: they reach the client in one round trip either way, and compressing
  a run's 4 KB answer to POST /api/v1/runs took 7% of that request's time in the app.
- Downloads and exports (not HTML) are compressed: they do not echo their query (the export is
  filtered by it, but no filter's text is written into it; a download's `part` is checked first).
- Errors are never compressed (Flask-Compress leaves non-2xx alone): a 400 may echo what was wrong.

The session cookies are also SameSite=Lax, so another site can only make the browser send them with
a top-level GET navigation, which is the case the first rule covers.
"""

from __future__ import annotations

from flask import Flask, Response, current_app, request
from flask_compress import Compress

compress = Compress()

# Compressible content: what the app sends (HTML, JSON, text, Markdown, CSV, JSON Lines) and its
# static CSS and JavaScript. Images are already compressed; nothing else is served.
MIMETYPES = [
    "text/html",
    "application/json",
    "text/plain",
    "text/markdown",
    "text/csv",
    "application/x-ndjson",
    "text/css",
    "text/javascript",
    "application/javascript",
    "image/svg+xml",
]
SETTINGS = {
    "COMPRESS_MIMETYPES": MIMETYPES,
    # brotli first: browsers offer both, and it is smaller at a similar cost (quality 4).
    "COMPRESS_ALGORITHM": ["br", "gzip"],
    # Streams (downloads, exports, static files) in gzip only. brotli's stream encoder, at the window
    # Flask-Compress gives it (lgwin 22), takes in 8 MB before its first output byte (2 MB at lgwin
    # 20): an export would wait for that and hold it. zlib sends output every 64 KB or so of input.
    "COMPRESS_ALGORITHM_STREAMING": ["gzip"],
    "COMPRESS_STREAMS": True,
    "COMPRESS_MIN_SIZE": 500,
    # Registered below, behind the BREACH rule, instead of on every response.
    "COMPRESS_REGISTER": False,
}
# Query parameters whose value a successful page never shows unless it is one of a few fixed words.
NOT_ECHOED = frozenset({"tab", "view"})
SAFE_METHODS = frozenset({"GET", "HEAD"})
# A body that fits a TCP connection's first flight beside its headers: 10 segments (RFC 6928's
# initial window) of 1,460 bytes, less 1.6 KB for the headers (about 900 bytes here) and TLS. An
# answer this small arrives in one round trip compressed or not, so for a program reading the API
# there is nothing to gain from the CPU compressing it costs.
ONE_ROUND_TRIP_BYTES = 13_000


def may_compress(response: Response) -> bool:
    """Whether this response is compressed: not when that would open it to BREACH, nor an API answer
    under ONE_ROUND_TRIP_BYTES (see the module's doc)."""
    if request.blueprint == "api":  # bearer-token authentication: no ambient credentials
        return response.content_length is None or response.content_length >= ONE_ROUND_TRIP_BYTES
    if request.headers.get("HX-Request") == "true":
        return True  # only this site's own pages can send a custom header
    if response.mimetype != "text/html":
        return True  # downloads, exports, static files: no query text in them
    return request.method in SAFE_METHODS and set(request.args) <= NOT_ECHOED


def chosen_coding(accept_encoding: str, offered: list[str]) -> str | None:
    """The coding to send: the offered one the client rates highest, ties going to the order of
    `offered`; None when it accepts none of them.

    Done here because Flask-Compress 1.25 picks a coding the client rated `q=0`, which RFC 9110
    (12.5.3) makes a refusal: `Accept-Encoding: gzip;q=0` would get gzip. A `*` rates every coding
    not named; an unreadable weight refuses its coding.
    """
    ratings: dict[str, float] = {}
    for part in accept_encoding.lower().split(","):
        name, _, parameters = part.partition(";")
        quality = 1.0
        for parameter in parameters.split(";"):
            key, _, value = parameter.strip().partition("=")
            if key == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        if name.strip():
            ratings[name.strip()] = quality
    best, best_quality = None, 0.0
    for coding in offered:
        quality = ratings.get(coding, ratings.get("*", 0.0))
        if quality > best_quality:
            best, best_quality = coding, quality
    return best


def compress_response(response: Response) -> Response:
    """Compress when the client accepts it and the BREACH rule allows it; Vary: Accept-Encoding always."""
    offered = current_app.config["COMPRESS_ALGORITHM_STREAMING" if response.is_streamed else "COMPRESS_ALGORITHM"]
    coding = chosen_coding(request.headers.get("Accept-Encoding", ""), list(offered))
    if coding is None or not may_compress(response):
        response.vary.add("Accept-Encoding")
        return response
    if response.direct_passthrough:
        # A static file: Flask-Compress would stream it through a generator that never closes the
        # file (a leaked descriptor per request). The files are small: read them, closed with the response.
        response.direct_passthrough = False
        response.make_sequence()
    # Flask-Compress negotiates again from the request's header: it is shown only the coding chosen here.
    request.environ["HTTP_ACCEPT_ENCODING"] = coding
    return compress.after_request(response)


def init_app(app: Flask) -> None:
    """Compression settings (the app's own config wins) and the hook. Call it before any other
    after_request hook is registered: hooks run last-registered first, so this one then runs last
    and compresses the body and headers as every other hook left them."""
    for name, value in SETTINGS.items():
        app.config.setdefault(name, value)
    compress.init_app(app)
    app.after_request(compress_response)
