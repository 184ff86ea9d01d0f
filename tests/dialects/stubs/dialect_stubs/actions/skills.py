"""Stub AOS skills: deterministic results shaped like the fixtures' expectations.

Results that cost something report ``cost_cents`` (how golden records learn a step's cost).
"""

from __future__ import annotations

import threading
from typing import Any

_attempts: dict[tuple[int | None, str], int] = {}
_lock = threading.Lock()


class SkillFailed(Exception):
    """The error the failing stubs raise."""


def http_call(method: str, url: str, seed: int | None = None) -> dict[str, Any]:
    return {
        "status_code": 200,
        "body": {"id": 1, "email": "jane.doe@example.com", "name": "Jane Doe"},
        "request": f"{method} {url}",
        "cost_cents": 0.1,
    }


def extract(data: Any, operation: str, path: str, seed: int | None = None) -> dict[str, Any]:
    key = path.removeprefix("$.")
    value = data.get(key) if isinstance(data, dict) else None
    return {"output": value, "operation": operation}


def llm_invoke(model: str, prompt: str, seed: int | None = None) -> dict[str, Any]:
    return {"output": f"[{model}] {prompt}", "seed": seed, "cost_cents": 0.5}


def json_transform(input: dict[str, Any], seed: int | None = None) -> dict[str, Any]:
    values = list(input.values())
    result: dict[str, Any] = {"transformed": True}
    if any(isinstance(v, float) for v in values):
        result["sum"] = round(sum(values), 8)
    return result


def fetch_data(seed: int | None = None) -> dict[str, Any]:
    return {"rows": [1, 2, 3], "seed": seed}


def transform(seed: int | None = None) -> dict[str, Any]:
    return {"rows": [2, 4, 6]}


def store_result(seed: int | None = None) -> dict[str, Any]:
    return {"stored": 3}


def flaky(key: str, fail_times: int = 1, seed: int | None = None) -> dict[str, Any]:
    with _lock:
        count = _attempts.get((seed, key), 0) + 1
        _attempts[(seed, key)] = count
    if count <= fail_times:
        raise SkillFailed(f"attempt {count} of {key} fails on purpose")
    return {"attempts": count}


def broken(seed: int | None = None) -> None:
    raise SkillFailed("this skill always fails")
