"""gunicorn's settings for Artifacts: `gunicorn --config gunicorn.conf.py wsgi:app` (what `make run` does).

gunicorn also reads this file by itself when started from this folder. A command-line flag still
wins over a value here (`--bind`, `--workers`, ...).
"""

import os

from gunicorn.arbiter import Arbiter

# Where to listen: BIND, e.g. "0.0.0.0:8000" or "127.0.0.1:8000,[::1]:8000". Set here because
# gunicorn's own default listens on every interface (0.0.0.0) as soon as a PORT variable is set;
# the app should be reachable only through the proxy in front of it unless asked otherwise.
bind = [address.strip() for address in os.environ.get("BIND", "127.0.0.1:8000").split(",") if address.strip()]

# Processes serving requests: WEB_CONCURRENCY (the name platforms set). Each one serves one request
# at a time, so this is how many run at once; 2-4 per core is usual, and each holds at most one
# database connection while it works.
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))

# Plain synchronous workers: the app is synchronous code (a database session per request, markdown
# rendered in a helper process under a time budget). It is meant to sit behind a buffering reverse
# proxy (nginx), which reads requests and slow downloads for it, so a worker is busy only while the
# app works.
worker_class = "sync"

# A worker busy on one request for longer than this is killed and replaced (a sync worker sends no
# heartbeat while it serves). The slowest legitimate request is a streamed export: 110,000 runs,
# 305 MB of JSON Lines, took 9 to 16 s on a busy 2-core machine (bench/export.py), so a minute
# covers about half a million runs; a longer one is cut, and its missing summary line says so
# (`flask runs export` has no such limit). Rendering stops at 1 s
# (RENDER_TIME_BUDGET_MS). Longer would let a stuck request hold one of few workers for longer.
# Without a buffering proxy, a client downloading slower than that is cut off at this limit.
timeout = 60

# On SIGTERM (a deploy, a stop) gunicorn serves no new requests and lets each worker finish its
# request for up to this long before killing it. Nearly every request takes well under a second;
# this leaves a large export time to finish. Give the supervisor a longer stop timeout than this
# (`docker stop` waits 10 s unless told `-t 35`; Kubernetes' terminationGracePeriodSeconds is 30),
# or it kills gunicorn first.
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

# Seconds an idle keep-alive connection is kept open. The sync worker ignores it (it closes the
# connection after each response; the proxy keeps the client's open); it applies if worker_class
# is changed to gthread, and should then stay above a load balancer's idle timeout, so the balancer
# never sends a request on a connection gunicorn is closing.
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
