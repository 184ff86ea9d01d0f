"""Errors the store raises, each a subclass of the project's error root.

Callers tell an optimistic-concurrency loss (reload and decide again) from a duplicate
start (return the existing run) by type, without parsing messages.
"""

from __future__ import annotations

from treadle.common.errors import ConflictError, TreadleError


class CodecError(TreadleError):
    """Stored data could not be turned back into the core's types (unknown kind, bad shape)."""


class DuplicateRunError(ConflictError):
    """A run with this id, idempotency key or trigger event already exists."""

    def __init__(self, message: str, *, existing_run_id: str | None = None) -> None:
        self.existing_run_id = existing_run_id
        super().__init__(message)
