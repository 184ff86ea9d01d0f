"""The bodies of the audit route, as the OpenAPI document describes them.

An entry says who (``actor``: ``token:<name>``, ``cli:<login>``, ``client:<login>``,
``webhook:<name>``) did what (``action``) to what (``target``) in which workspace, when,
and how it ended; ``details`` never holds a secret.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from treadle.common.access import AuditOutcome
from treadle.scheduler.store.entries import AuditRecord

__all__ = ["AuditItem", "AuditPage"]


class AuditItem(BaseModel):
    """One entry of the audit log."""

    id: int = Field(description="Increasing: newer entries have greater ids.")
    at: datetime
    actor: str
    workspace: str
    action: str = Field(description="What was done, e.g. `run.start`, `kv.set`.")
    target: str | None = Field(description="A run id, a ref, a key, a token id...")
    outcome: AuditOutcome
    details: dict[str, Any] | None = None

    @classmethod
    def of(cls, record: AuditRecord) -> AuditItem:
        return cls(
            id=record.id,
            at=record.at,
            actor=record.actor,
            workspace=record.workspace,
            action=record.action,
            target=record.target,
            outcome=record.outcome,
            details=dict(record.details) if record.details is not None else None,
        )


class AuditPage(BaseModel):
    """A page of entries, newest first; pass `next_cursor` back as `cursor` for the next."""

    items: list[AuditItem]
    next_cursor: str | None
