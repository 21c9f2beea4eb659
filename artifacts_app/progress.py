"""What a command that walks many runs shows: a progress bar on a terminal, and a count for its summary line."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TextIO

import click


@contextmanager
def progress(label: str, length: int, stream: TextIO | None = None) -> Iterator[Callable[[int], None]]:
    """A bar of `length` steps, advanced by calling what this yields with a number done.

    It is drawn on stderr, never on stdout (which may be carrying the data, as `runs export`'s does),
    and only when stderr is a terminal: a log or a pipe gets no bar and no label, only the summary
    line the command prints at the end.
    """
    stream = stream or sys.stderr
    with click.progressbar(length=length, label=label, file=stream, hidden=not is_terminal(stream)) as bar:
        yield bar.update


def is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or stand-in stream
        return False


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """A count for a summary line: "1 run", "1,234 runs"."""
    return f"{n:,} {noun if n == 1 else plural or noun + 's'}"
