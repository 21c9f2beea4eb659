"""gunicorn's settings for Artifacts: `gunicorn --config gunicorn.conf.py wsgi:app` (what `make run` does).

gunicorn also reads this file by itself when started from this folder. A command-line flag still
wins over a value here (`--bind`, `--workers`, ...).
"""

import os
import socket

from gunicorn.arbiter import Arbiter

# Where to listen: BIND, e.g. "0.0.0.0:8000" or "127.0.0.1:8000,[::1]:8000". Set here because
# gunicorn's own default listens on every interface (0.0.0.0) as soon as a PORT variable is set;
# the app should be reachable only through the proxy in front of it unless asked otherwise.
bind = [address.strip() for address in os.environ.get("BIND", "127.0.0.1:8000").split(",") if address.strip()]

# Processes serving requests: WEB_CONCURRENCY (the name platforms set). 1-2 per core is usual; each
# serves `threads` requests at once, each holding at most one database connection while it works
# (within SQLAlchemy's pool of 5), so PostgreSQL sees up to workers x threads connections.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))

# Threaded workers, so that `timeout` bounds a hung process and not the length of a request. A sync
# worker tells the arbiter it is alive only between requests, so any request longer than `timeout`
# gets the worker killed mid-response: an export of a few hundred thousand runs was cut at 60 s.
# A gthread worker's main thread keeps telling it while its threads serve, however long an export
# streams (tests/test_gunicorn_conf.py runs one past a 3 s timeout). What bounds a request instead
# is each of its parts: a statement (DATABASE_STATEMENT_TIMEOUT, 30 s), a wait for a pooled or new
# connection (1 s + 3 s), a markdown render (a helper process killed at RENDER_TIME_BUDGET_MS), a
# diff (its line and word budgets), the throttle store and Redis (1 s socket timeouts). Python
# cannot stop a thread, so there is no wall-clock limit per request. The app is thread-safe: a
# database session per thread (Flask-SQLAlchemy's scoped session), a markdown renderer per thread,
# render helpers lent to one thread at a time, the limits library's memory store behind locks.
worker_class = "gthread"

# Requests one worker serves at once. A long export then occupies one thread and the worker's other
# threads go on serving; threads share one core (the GIL), so more buys waiting, not computing.
threads = 4

# A worker that has not told the arbiter it is alive for this long (its main thread stuck: a
# deadlock, a C call holding the GIL) is killed and replaced. It does not limit a request (above).
timeout = 60

# A client that takes none of a response for this long is dropped: STALLED_CLIENT_TIMEOUT seconds,
# 0 for never. Otherwise a client that stops reading (a paused download, a hung peer) would keep its
# thread, and an export its database transaction, for as long as it keeps the connection open;
# the sync worker's timeout used to cut it. A client reading slowly is not stalled and is not cut.
# Linux only (TCP_USER_TIMEOUT, set on the listening sockets and inherited by every connection).
STALLED_CLIENT_SECONDS = int(os.environ.get("STALLED_CLIENT_TIMEOUT", "60"))

# On SIGTERM (a deploy, a stop) gunicorn serves no new requests and lets each worker finish its
# requests for up to this long before killing it. Nearly every request takes well under a second;
# this leaves an export of about 200,000 runs time to finish (bench/export.py); a longer one is cut
# by the deploy, and its missing summary line says so. Give the supervisor a longer stop timeout
# than this (`docker stop` waits 10 s unless told `-t 35`; Kubernetes' terminationGracePeriodSeconds
# is 30), or it kills gunicorn first.
graceful_timeout = 30

# The longest request line (method, path and query) accepted; longer gets 414 from gunicorn. The
# list's filters travel in the query string (a search, a few pipelines, models and tags, a signed
# cursor), and htmx puts them in the address bar; 8190 is gunicorn's most, matching nginx's default
# header buffer, so a URL that passes the proxy passes here too. The app's own caps (MAX_VALUES ×
# MAX_FILTER_LENGTH in paging.py) stay in force below it.
limit_request_line = 8190

# Headers per request; more gets 431. A browser sends about 15, htmx adds up to 5 (HX-*), a proxy or
# two a few more (X-Forwarded-*, Via): 50 leaves room and refuses requests padded with hundreds.
limit_request_fields = 50

# The largest single header; larger gets 431. The biggest real one is Cookie: the signed session
# cookie is well under 1 KB, and a browser keeps a cookie under 4 KB. 8190 is nginx's default too.
limit_request_field_size = 8190

# Seconds an idle keep-alive connection is kept open (waiting in the worker's main thread, not in one
# of its threads). Behind a load balancer that reuses connections, keep it above the balancer's idle
# timeout, so the balancer never sends a request on a connection gunicorn is closing.
keepalive = 5

# No control socket (gunicorn 25.1+ opens one for `gunicornc` by default): signals already do what
# it offers (TERM stops gracefully, HUP reloads, TTIN/TTOU change the worker count), and its default
# path is one per user ($XDG_RUNTIME_DIR or ~/.gunicorn/gunicorn.ctl), shared by every instance that
# user runs, so a second one would take the first one's.
control_socket_disable = True

# RATELIMIT_STORAGE_URI=memory:// keeps the login-throttle counters inside each worker process, so
# every worker would count its own failures and a guesser would get that many times the attempts.
# Refused at start when more than one worker would run (the count after --workers and
# WEB_CONCURRENCY, as gunicorn settles it); the same store on several hosts is the same mistake,
# which no host can see (README: "Running on more than one host").
PER_PROCESS_STORE = "memory://"


def per_process_store_problem(workers: int) -> str | None:
    """Why this worker count cannot share the configured throttle store, or None if it can."""
    uri = os.environ.get("RATELIMIT_STORAGE_URI") or ""
    if workers <= 1 or not uri.startswith(PER_PROCESS_STORE):
        return None
    return (f"RATELIMIT_STORAGE_URI={uri} counts login failures in each worker separately, so {workers} workers "
            f"would allow {workers} times the attempts. Use a store every worker shares (redis://…, "
            f"`pip install 'artifacts[redis]'`), leave RATELIMIT_STORAGE_URI unset to count in the database, "
            f"or run one worker (WEB_CONCURRENCY=1).")


def nworkers_changed(server: Arbiter, new_value: int, old_value: int | None) -> None:
    """At start (old_value None) refuse a per-process throttle store shared by several workers; later
    (TTIN) only say so, since gunicorn is already serving."""
    problem = per_process_store_problem(new_value)
    if problem is None:
        return
    if old_value is None:
        raise RuntimeError(problem)  # gunicorn prints "Error: …" and exits with status 1
    server.log.error(problem)


def when_ready(server: Arbiter) -> None:
    """Before the first worker starts: give each TCP listener the stalled-client limit, which the
    connections it accepts inherit."""
    if STALLED_CLIENT_SECONDS <= 0 or not hasattr(socket, "TCP_USER_TIMEOUT"):
        return
    for listener in server.LISTENERS:
        if listener.family in (socket.AF_INET, socket.AF_INET6):
            try:
                listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT, STALLED_CLIENT_SECONDS * 1000)
            except OSError as error:  # a kernel or sandbox without it: serve anyway, and say so
                server.log.warning("STALLED_CLIENT_TIMEOUT not applied to %s: %s", listener, error)
