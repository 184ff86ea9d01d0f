"""How Treadle measures and encodes the JSON that crosses process boundaries.

Results, inputs and published variables are counted against the size limits by the same
rule everywhere (compact UTF-8 JSON), so a run hits a limit at the same point whether the
worker or the scheduler checks it.
"""

from __future__ import annotations

import json
from typing import Any


def encode(value: Any) -> str:
    """Compact JSON text of ``value``; raises ``TypeError``/``ValueError`` if it is not JSON."""
    return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":"))


def size_in_bytes(text: str) -> int:
    return len(text.encode("utf-8"))


def json_size(value: Any) -> int:
    """Bytes of ``value`` as compact UTF-8 JSON (non-JSON leaves are counted as strings)."""
    if value is None:
        return 0
    try:
        return size_in_bytes(encode(value))
    except (TypeError, ValueError):
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
        return size_in_bytes(text)
