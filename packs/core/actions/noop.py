"""core.noop: a task that does nothing, for joins, branches and placeholders."""

from __future__ import annotations


def noop(message: str | None = None) -> None:
    return None
