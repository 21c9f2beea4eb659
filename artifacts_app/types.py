"""Column types that behave the same on PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Numeric, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

# JSONB on PostgreSQL (indexable, path queries); plain JSON text on SQLite.
JSONDocument = JSON().with_variant(JSONB(), "postgresql")
# The same, with None stored as SQL NULL rather than JSON null: for columns a filter reads, where
# "no tags" must not be a JSON scalar that array functions refuse.
JSONOrNull = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
# A list of strings: a text[] on PostgreSQL, whose statistics count each element, so the planner
# knows a common tag from a rare one (for jsonb it assumes every containment is rare); JSON on SQLite.
StringList = JSON(none_as_null=True).with_variant(ARRAY(Text()), "postgresql")

MONEY_PLACES = 12
MONEY_QUANTUM = Decimal(1).scaleb(-MONEY_PLACES)
MONEY_LIMIT = Decimal(10) ** (18 - MONEY_PLACES)  # numeric(18,12) holds values below $1,000,000


class Money(TypeDecorator[Decimal]):
    """numeric(18,12) dollars that read back as the exact Decimal written, on every engine.

    PostgreSQL keeps NUMERIC exactly. SQLite has no decimal type and would store a float, so
    there the value is kept as an integer count of 10^-12 dollars: exact, and SUM() stays exact.
    """

    impl = Numeric(18, MONEY_PLACES)
    cache_ok = True
    limit = MONEY_LIMIT

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(BigInteger())
        return dialect.type_descriptor(Numeric(self.impl.precision, MONEY_PLACES, asdecimal=True))

    def process_bind_param(self, value: Decimal | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if not isinstance(value, Decimal):
            raise TypeError(f"money must be a Decimal, not {type(value).__name__}")
        exact = value.quantize(MONEY_QUANTUM)
        if exact != value:
            raise ValueError(f"{value} has more than {MONEY_PLACES} decimal places")
        if abs(exact) >= self.limit:
            raise ValueError(f"{value} does not fit numeric({self.impl.precision},{MONEY_PLACES})")
        if dialect.name == "sqlite":
            return int(exact.scaleb(MONEY_PLACES))
        return exact

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        if value is None:
            return None
        if dialect.name == "sqlite":
            return Decimal(int(value)).scaleb(-MONEY_PLACES).quantize(MONEY_QUANTUM)
        return Decimal(value).quantize(MONEY_QUANTUM)


class MoneyTotal(Money):
    """A sum of many runs' Money: numeric(24,12) on PostgreSQL, so a million runs' costs still fit.

    On SQLite it is the same 64-bit count of 10^-12 dollars as Money (sums up to about $9.2 million).
    """

    impl = Numeric(24, MONEY_PLACES)
    cache_ok = True
    limit = Decimal(10) ** (24 - MONEY_PLACES)


class UTCDateTime(TypeDecorator[datetime]):
    """A timestamp stored as UTC and read back timezone-aware, on every engine.

    SQLite drops the offset; without this a value written aware would come back naive.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("timestamps must be timezone-aware")
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            # Naive UTC, stored with a fixed-width format so text order is time order.
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(timezone.utc)
