"""How the core describes failures it detects itself (``task.<name>.error``)."""

from __future__ import annotations

from typing import Any

from treadle.common.errors import ExpressionError


def error_info(kind: str, message: str, **details: Any) -> dict[str, Any]:
    """An error as users see it: ``{"type": ..., "message": ...}`` plus optional details."""
    error: dict[str, Any] = {"type": kind, "message": message}
    error.update(details)
    return error


def expression_failure(exc: ExpressionError, field: str) -> dict[str, Any]:
    return error_info("ExpressionError", f"{field}: {exc}")
