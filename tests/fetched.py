"""How much a request fetches from the database: every value of every row that reaches Python, measured.

SQLAlchemy has no event for rows fetched, so after each statement runs the DBAPI cursor its result
reads from is swapped for one that measures the rows on their way (bench/compare_input.py uses it too).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa


@dataclass
class Fetched:
    """The statements sent and the text and binary values fetched, in UTF-8 bytes."""

    statements: list[str] = field(default_factory=list)
    total_bytes: int = 0
    largest_value: int = 0  # bytes of the largest single value

    def measure(self, rows: Iterable[Any]) -> None:
        for row in rows:
            for value in row:
                size = len(value.encode()) if isinstance(value, str) else len(value) if isinstance(
                    value, (bytes, bytearray, memoryview)) else 0
                self.total_bytes += size
                self.largest_value = max(self.largest_value, size)


class MeasuringCursor:
    """A DBAPI cursor that tells `fetched` about every row it hands out."""

    def __init__(self, cursor: Any, fetched: Fetched) -> None:
        self._cursor, self._fetched = cursor, fetched

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)

    def fetchone(self) -> Any:
        row = self._cursor.fetchone()
        if row is not None:
            self._fetched.measure([row])
        return row

    def fetchmany(self, *size: int) -> list[Any]:
        rows: list[Any] = self._cursor.fetchmany(*size)
        self._fetched.measure(rows)
        return rows

    def fetchall(self) -> list[Any]:
        rows: list[Any] = self._cursor.fetchall()
        self._fetched.measure(rows)
        return rows


@contextmanager
def fetched_from(engine: sa.engine.Engine) -> Iterator[Fetched]:
    """Measure what every statement on `engine` fetches until the block ends."""
    fetched = Fetched()

    def measure(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        fetched.statements.append(statement)
        if context is not None:
            context.cursor = MeasuringCursor(cursor, fetched)

    sa.event.listen(engine, "after_cursor_execute", measure)
    try:
        yield fetched
    finally:
        sa.event.remove(engine, "after_cursor_execute", measure)
