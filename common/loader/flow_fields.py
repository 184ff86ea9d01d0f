"""The flow-control fields of tasks and workflows: ``priority``, ``concurrency_key``,
``rate_limit``.

Tasks and workflows read them the same way, so they live here once; each problem names its
field (``docs/flow-control.md``).
"""

from __future__ import annotations

from typing import Any

from treadle.common.flow import MAX_PRIORITY, MIN_PRIORITY
from treadle.common.loader.reader import Reader
from treadle.common.source import Path
from treadle.common.spec import ConcurrencyKeySpec, RateLimitSpec


def read_priority(reader: Reader, value: Any, path: Path, what: str) -> int | None:
    """An integer from 0 (last) to 9 (first)."""
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int)
        or not (MIN_PRIORITY <= value <= MAX_PRIORITY)
    ):
        reader.error(
            path,
            f"'priority' of {what} must be an integer from {MIN_PRIORITY} (last) to "
            f"{MAX_PRIORITY} (first), not {value!r}",
            at_value=True,
        )
        return None
    return value


def read_concurrency_key(
    reader: Reader, value: Any, path: Path, what: str
) -> ConcurrencyKeySpec | None:
    """``{key: "<text or template>", limit: N}``."""
    entry = reader.mapping(value, path, f"'concurrency_key' of {what}")
    if entry is None:
        return None
    reader.check_fields(entry, path, f"the concurrency_key of {what}", ("key", "limit"))
    key = _key(reader, entry, path, f"'concurrency_key.key' of {what}", required=True)
    limit = _limit(reader, entry, path, f"'concurrency_key.limit' of {what}")
    if key is None or limit is None:
        return None
    return ConcurrencyKeySpec(key=key, limit=limit)


def read_rate_limit(reader: Reader, value: Any, path: Path, what: str) -> RateLimitSpec | None:
    """``{limit: N, period: 1m, key: "<text or template>"}``; the key defaults to the action."""
    entry = reader.mapping(value, path, f"'rate_limit' of {what}")
    if entry is None:
        return None
    reader.check_fields(entry, path, f"the rate_limit of {what}", ("limit", "period", "key"))
    key = _key(reader, entry, path, f"'rate_limit.key' of {what}", required=False)
    limit = _limit(reader, entry, path, f"'rate_limit.limit' of {what}")
    period = reader.duration(
        entry.get("period"), (*path, "period"), f"'rate_limit.period' of {what}"
    )
    if "period" not in entry:
        reader.error(path, f"the rate_limit of {what} needs a 'period' (e.g. 1m)")
    elif period is not None and period.total_seconds() <= 0:
        reader.error((*path, "period"), f"'rate_limit.period' of {what} must be longer than 0")
        period = None
    if limit is None or period is None:
        return None
    return RateLimitSpec(limit=limit, period=period, key=key)


def _key(
    reader: Reader, entry: dict[Any, Any], path: Path, what: str, *, required: bool
) -> str | None:
    if "key" not in entry:
        if required:
            reader.error(
                path,
                f'{what} is missing (text, or a template such as "{{{{ parameters.customer }}}}")',
            )
        return None
    key = reader.text(entry["key"], (*path, "key"), what, coerce=True)
    if key is not None and not key.strip():
        reader.error((*path, "key"), f"{what} must not be empty", at_value=True)
        return None
    return key


def _limit(reader: Reader, entry: dict[Any, Any], path: Path, what: str) -> int | None:
    if "limit" not in entry:
        reader.error(path, f"{what} is missing (a positive integer)")
        return None
    return reader.count(entry["limit"], (*path, "limit"), what, minimum=1)
