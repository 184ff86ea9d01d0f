"""Durations as users write them: a number of seconds, or text such as ``30s`` or ``5m``.

Timeouts and delays are stored as :class:`timedelta` so nothing downstream has to guess
the unit. Accepted units: ``ms``, ``s``, ``m``, ``h``, ``d`` (and a bare number is seconds).
"""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Any, Final

_UNIT_SECONDS: Final = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TEXT = re.compile(r"^\s*(?P<number>-?\d+(?:\.\d+)?)\s*(?P<unit>ms|s|m|h|d)?\s*$")
#: Far beyond any sensible timeout, and well inside what ``timedelta`` can hold.
_MAX_SECONDS: Final = 10 * 365 * 86400.0


class DurationError(ValueError):
    """The value is not a duration; the message says what is accepted."""


def parse_duration(value: Any) -> timedelta:
    """``value`` as a :class:`timedelta`; raise :class:`DurationError` when it is not one."""
    if isinstance(value, bool):
        raise DurationError(_expected(value))
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        match = _TEXT.match(value)
        if match is None:
            raise DurationError(_expected(value))
        seconds = float(match["number"]) * _UNIT_SECONDS[match["unit"] or "s"]
    else:
        raise DurationError(_expected(value))
    if math.isnan(seconds) or seconds < 0:
        raise DurationError(f"a duration cannot be negative (got {value!r})")
    if seconds > _MAX_SECONDS:
        raise DurationError(f"duration {value!r} is longer than 10 years")
    return timedelta(seconds=seconds)


def _expected(value: Any) -> str:
    return (
        f"expected a duration: a number of seconds or text like '500ms', '30s', '5m', "
        f"'2h' or '1d' (got {value!r})"
    )
