"""A hard time budget for rendering untrusted markdown, enforced outside the parser.

python-markdown and the stdlib HTML parser it uses have inputs on which they are quadratic or
worse (64 KB of "<a " took 110 s), and a Python thread cannot be stopped. So each render runs
in a helper process that is killed when the budget runs out; the caller gets None and shows the
text escaped. Helpers come from a forkserver that has the renderer imported already, so
replacing a killed one costs a fork, not an import.

Why not a library: concurrent.futures' process pool cannot kill one stuck task on Python 3.11
(it has no terminate_workers), and signal-based timeouts do not interrupt C code such as re.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import queue
import resource
import threading
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

logger = logging.getLogger(__name__)

# Address space of one helper: a pathological input may also try to eat memory.
HELPER_MEMORY_BYTES = 2 * 1024**3
# How long a new helper may take to say it is ready (a fork, or the forkserver's first start on a
# loaded machine). Not part of any render's budget: a render's clock starts once its helper is ready.
HELPER_START_SECONDS = 30.0
READY = "ready"
_context = multiprocessing.get_context("forkserver")
_context.set_forkserver_preload(["artifacts_app.rendering"])


class RenderFailed(Exception):
    """The helper died or raised: the text cannot be rendered (the next call gets a new helper)."""


def _serve(connection: Connection, work: Callable[[str], Any]) -> None:
    """The helper's loop: text in, work(text) out, until the parent goes away."""
    with contextlib.suppress(ValueError, OSError):  # a lower hard limit is already in force
        resource.setrlimit(resource.RLIMIT_AS, (HELPER_MEMORY_BYTES, HELPER_MEMORY_BYTES))
    connection.send((READY, None))
    while True:
        try:
            text = connection.recv()
        except (EOFError, OSError):
            return
        try:
            result: tuple[str, Any] = ("ok", work(text))
        except BaseException as error:  # MemoryError, RecursionError: report, keep serving
            result = ("error", f"{type(error).__name__}: {error}"[:500])
        connection.send(result)


class _Helper:
    """One helper process, started and ready, and our end of its pipe."""

    def __init__(self, work: Callable[[str], Any]) -> None:
        self.connection, child_end = _context.Pipe()
        self.process = _context.Process(target=_serve, args=(child_end, work), daemon=True)
        self.process.start()
        child_end.close()
        # Wait for the helper to be up, so that starting it never counts against a render's budget.
        if not self.connection.poll(HELPER_START_SECONDS):
            self.close()
            raise RenderFailed(f"the render helper did not start within {HELPER_START_SECONDS:g} s")
        try:
            self.connection.recv()
        except (EOFError, OSError) as error:
            self.close()
            raise RenderFailed(f"the render helper stopped while starting: {error}") from None

    def call(self, text: str, timeout: float) -> tuple[bool, Any]:
        """(True, result) within the timeout; (False, None) after killing a helper that ran out."""
        self.connection.send(text)
        if not self.connection.poll(timeout):
            self.close()
            return False, None
        status, value = self.connection.recv()
        if status != "ok":
            raise RenderFailed(value)
        return True, value

    def close(self) -> None:
        self.process.kill()
        self.process.join(timeout=5)
        self.connection.close()


class Sandbox:
    """A pool of helpers for one function; threads each borrow one at a time."""

    def __init__(self, work: Callable[[str], Any]) -> None:
        self.work = work
        self.idle: queue.SimpleQueue[_Helper] = queue.SimpleQueue()
        self.lock = threading.Lock()

    def run(self, text: str, timeout: float) -> tuple[bool, Any]:
        """work(text) in a helper: (True, result), or (False, None) when it took longer than timeout."""
        try:
            helper = self.idle.get_nowait()
        except queue.Empty:
            with self.lock:  # the first start also starts the forkserver; once is enough
                helper = _Helper(self.work)
        try:
            finished, value = helper.call(text, timeout)
        except (EOFError, OSError, BrokenPipeError) as error:
            helper.close()
            raise RenderFailed(f"the render helper stopped: {error}") from None
        except RenderFailed:
            self.idle.put(helper)  # it reported the error and is still serving
            raise
        if finished:
            self.idle.put(helper)
        return finished, value
