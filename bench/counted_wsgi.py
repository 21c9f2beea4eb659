"""wsgi:app, counting for bench/export.py what each export costs its gunicorn worker: the SQL
statements it sent and the worker's peak resident memory while it ran.

Served as `gunicorn --config gunicorn.conf.py counted_wsgi:app` (with bench/ on PYTHONPATH), so the
server's settings are exactly the deployed ones. After each export the worker appends one JSON line
to the file named by BENCH_COUNTS: {"path", "statements", "rss_before_kb", "peak_kb"}. An export the
worker is killed in writes nothing.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine

from wsgi import app as flask_app

statements = 0


@event.listens_for(Engine, "before_cursor_execute")
def count_statement(*_: Any) -> None:
    global statements
    statements += 1


def memory_kb(field: str) -> int:
    """VmRSS or VmHWM (the peak since the last reset) of this process, in kB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def reset_peak() -> None:
    """Start VmHWM afresh from the current RSS (Linux: "5" to clear_refs)."""
    with open("/proc/self/clear_refs", "w", encoding="ascii") as clear:
        clear.write("5")


class Counted:
    """The response body, passed through; on close, what the request cost."""

    def __init__(self, body: Iterable[bytes], path: str, start: int, rss_before: int) -> None:
        self.body, self.path, self.start, self.rss_before = body, path, start, rss_before

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        close = getattr(self.body, "close", None)
        if close is not None:
            close()
        with open(os.environ["BENCH_COUNTS"], "a", encoding="utf-8") as counts:
            counts.write(json.dumps({"path": self.path, "statements": statements - self.start,
                                     "rss_before_kb": self.rss_before, "peak_kb": memory_kb("VmHWM")}) + "\n")


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    path = environ.get("PATH_INFO", "")
    if not path.startswith("/artifacts/export"):
        return flask_app(environ, start_response)  # type: ignore[no-any-return]
    # Counted from before the request is handled: loading the session's user is part of it.
    reset_peak()
    start, rss_before = statements, memory_kb("VmRSS")
    return Counted(flask_app(environ, start_response), path, start, rss_before)
