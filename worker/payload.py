"""Checks that what crosses the worker boundary is plain JSON of bounded size.

Inputs and results travel as JSON between the scheduler and the workers (in distributed
mode through the broker and the database). Checking here, with the same rules in both
modes, means a run behaves the same embedded or distributed: a value that would not
survive the trip fails the attempt with a message naming where the bad value is.
"""

from __future__ import annotations

import json
import math
from typing import Any

from treadle.common.payload import encode, size_in_bytes
from treadle.worker.errors import ActionError

# Deeper than this, a structure is reported as too deep rather than walked further.
_MAX_WALK_DEPTH = 500


def to_json_value(value: Any, *, what: str, error_type: str, limit: int) -> Any:
    """``value`` as it reads back from JSON, after checking it is JSON and within ``limit``.

    Tuples become lists and number keys become strings, exactly as in distributed mode.
    Raises :class:`ActionError` of ``error_type`` (or ``PayloadTooLarge``) naming ``what``.
    """
    try:
        text = encode(value)
    except (TypeError, ValueError) as exc:
        raise ActionError(
            error_type, f"{what} is not JSON-serialisable: {describe_problem(value, exc)}"
        ) from None
    size = size_in_bytes(text)
    if size > limit:
        raise ActionError(
            "PayloadTooLarge",
            f"{what} is {size} bytes of JSON, over the limit of {limit} bytes",
            {"size_bytes": size, "limit_bytes": limit},
        )
    return json.loads(text)


def describe_problem(value: Any, exc: Exception) -> str:
    """Where in ``value`` the first non-JSON piece is, and what type it has."""
    found = _find(value, "", set(), 0)
    if found is None:  # the encoder disagreed with the walk; fall back on its message
        return str(exc)
    path, problem = found
    return f"{problem} at {path or 'the top level'}"


def _find(value: Any, path: str, active: set[int], depth: int) -> tuple[str, str] | None:
    if value is None or isinstance(value, bool | int | str):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, f"the number {value} (not allowed in JSON)")
    if depth > _MAX_WALK_DEPTH:
        return (path, f"nesting deeper than {_MAX_WALK_DEPTH} levels")
    if isinstance(value, dict | list | tuple):
        if id(value) in active:
            return (path, "a circular reference")
        active.add(id(value))
        try:
            if isinstance(value, dict):
                for key, item in value.items():
                    if not isinstance(key, str | int | float | bool) and key is not None:
                        return (path, f"a key of type {type(key).__name__}")
                    found = _find(item, f"{path}[{key!r}]", active, depth + 1)
                    if found is not None:
                        return found
            else:
                for index, item in enumerate(value):
                    found = _find(item, f"{path}[{index}]", active, depth + 1)
                    if found is not None:
                        return found
        finally:
            active.discard(id(value))
        return None
    return (path, f"a value of type {type(value).__name__}")
