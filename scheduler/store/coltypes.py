"""Column types that behave the same on SQLite and PostgreSQL.

SQLite has no time zones: it stores datetimes as text and hands them back naive, while
PostgreSQL's ``timestamptz`` hands them back in the session's zone. :class:`UTCDateTime`
makes both store UTC and always return timezone-aware UTC values, and refuses naive input
(a naive datetime is a bug: every time Treadle handles is UTC).

:data:`JSONValue` keeps documents as JSON text (not JSONB) so the key order of results and
outputs survives the round trip; Python ``None`` is stored as SQL ``NULL``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """A ``DateTime(timezone=True)`` that accepts only aware values and returns UTC ones."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(
                f"naive datetime {value.isoformat()} given to the store; pass an aware UTC value"
            )
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        if moment.tzinfo is None:
            return moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC)


#: JSON documents (results, payloads, contexts); ``None`` becomes SQL ``NULL``.
JSONValue = JSON(none_as_null=True)
