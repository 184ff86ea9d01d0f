"""Lifecycle events and their deliveries as people see them (the CLI and the API).

A delivery names its sink and never shows where the sink is or its secret: the database
holds neither (:mod:`treadle.common.event_sinks`). Redelivering is a change, recorded in
the audit log by whoever calls :func:`redeliver` through ``audited``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from treadle.scheduler.core.namespaces import iso
from treadle.scheduler.store import UnitOfWork
from treadle.scheduler.store.lifecycle_repo import DeliveryEntry, LifecycleEventEntry

__all__ = ["delivery_view", "event_view", "redeliver"]


def delivery_view(entry: DeliveryEntry) -> dict[str, Any]:
    """One delivery: its id, event, sink, status, attempts and last error."""
    return {
        "id": entry.id,
        "event_id": entry.event_id,
        "event_type": entry.event_type,
        "run_id": entry.run_id,
        "sink": entry.sink,
        "status": entry.status.value,
        "attempts": entry.attempts,
        "due_at": iso(entry.due_at),
        "last_error": entry.last_error,
        "last_status_code": entry.last_status_code,
        "created_at": iso(entry.created_at),
        "finished_at": iso(entry.finished_at),
    }


def event_view(entry: LifecycleEventEntry) -> dict[str, Any]:
    """One stored event: the CloudEvent and when it was published (None: not yet)."""
    return {"cloudevent": dict(entry.cloudevent), "published_at": iso(entry.published_at)}


def redeliver(uow: UnitOfWork, delivery_id: int, now: datetime) -> dict[str, Any]:
    """Make a delivery due again now with fresh attempts (NotFound for an unknown id); a
    scheduler posts it in its next pass. The delivery as it is now."""
    return delivery_view(uow.redeliver(delivery_id, now))
