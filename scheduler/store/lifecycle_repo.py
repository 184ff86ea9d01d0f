"""Lifecycle events as stored: written with their change, claimed for publishing in order,
and their deliveries to webhook sinks with retries (``docs/lifecycle-events.md``).

``lifecycle_events`` is the events' own outbox: a service that saves a change of a run or
a definition writes its CloudEvents here in the same transaction (with the setting on),
and a scheduler claims the unpublished ones (``SKIP LOCKED``), publishes them and marks
them published, adding one ``lifecycle_deliveries`` row per webhook sink that wants the
event. A run's events go out in the order they were written, even with several
schedulers claiming at once: a claim keeps a run's rows only up to the first unpublished
row of that run that it does not hold. Deliveries are posted outside any transaction: a
claim pushes their ``due_at`` forward by a lease, so no other scheduler takes them while
one posts, and the outcome is recorded afterwards.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Insert, RowMapping, bindparam, func, select, update
from sqlalchemy.dialects import postgresql, sqlite

from treadle.common.errors import NotFound
from treadle.scheduler.store.base import Repository, chunks
from treadle.scheduler.store.lifecycle_tables import lifecycle_deliveries, lifecycle_events

__all__ = [
    "DeliveryEntry",
    "DeliveryOutcome",
    "DeliveryStatus",
    "DueDelivery",
    "LifecycleEventEntry",
    "LifecycleRepository",
    "NewLifecycleEvent",
]


class DeliveryStatus(StrEnum):
    """Where a delivery of one event to one sink stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class NewLifecycleEvent:
    """A CloudEvent to store with the change it tells of (``run_id`` None: a definition's)."""

    event_id: str
    run_id: str | None
    type: str
    cloudevent: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class LifecycleEventEntry:
    """A stored lifecycle event, published or not yet."""

    id: int
    event_id: str
    run_id: str | None
    type: str
    cloudevent: Mapping[str, Any]
    created_at: datetime
    published_at: datetime | None


@dataclass(frozen=True, slots=True)
class DueDelivery:
    """A delivery claimed for posting: the sink's name, attempts so far and the event."""

    id: int
    event_id: str
    sink: str
    attempts: int
    cloudevent: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class DeliveryOutcome:
    """What posting a delivery did: delivered, or the error and when to try again (None:
    the attempts are used up, the delivery is kept as failed). Not ``counted``: it was not
    posted (its sink was found unreachable in the same pass), only put off to ``retry_at``."""

    id: int
    delivered: bool
    at: datetime
    status_code: int | None = None
    error: str | None = None
    retry_at: datetime | None = None
    counted: bool = True


@dataclass(frozen=True, slots=True)
class DeliveryEntry:
    """A delivery as people see it (no URL, no secret: the sink is named only)."""

    id: int
    event_id: str
    event_type: str | None
    run_id: str | None
    sink: str
    status: DeliveryStatus
    attempts: int
    due_at: datetime
    last_error: str | None
    last_status_code: int | None
    created_at: datetime
    finished_at: datetime | None


_EVENT_COLUMNS = (
    lifecycle_events.c.id,
    lifecycle_events.c.event_id,
    lifecycle_events.c.run_id,
    lifecycle_events.c.type,
    lifecycle_events.c.cloudevent,
    lifecycle_events.c.created_at,
    lifecycle_events.c.published_at,
)
_CLAIM_EVENTS = Repository._claim(
    select(*_EVENT_COLUMNS)
    .where(lifecycle_events.c.published_at.is_(None))
    .order_by(lifecycle_events.c.id)
    .limit(bindparam("limit"))
)
#: Per run, the first unpublished row a claim does not hold (another scheduler's).
_FIRST_NOT_HELD = (
    select(lifecycle_events.c.run_id, func.min(lifecycle_events.c.id))
    .where(
        lifecycle_events.c.published_at.is_(None),
        lifecycle_events.c.run_id.in_(bindparam("run_ids", expanding=True)),
        lifecycle_events.c.id.not_in(bindparam("held", expanding=True)),
    )
    .group_by(lifecycle_events.c.run_id)
)
_DELIVERY_COLUMNS = (
    lifecycle_deliveries.c.id,
    lifecycle_deliveries.c.event_id,
    lifecycle_events.c.type.label("event_type"),
    lifecycle_deliveries.c.run_id,
    lifecycle_deliveries.c.sink,
    lifecycle_deliveries.c.status,
    lifecycle_deliveries.c.attempts,
    lifecycle_deliveries.c.due_at,
    lifecycle_deliveries.c.last_error,
    lifecycle_deliveries.c.last_status_code,
    lifecycle_deliveries.c.created_at,
    lifecycle_deliveries.c.finished_at,
)
#: An event already stored under its id is the same change told twice: kept once.
_ADD_EVENTS: dict[str, Insert] = {
    "postgresql": postgresql.insert(lifecycle_events).on_conflict_do_nothing(
        index_elements=["event_id"]
    ),
    "sqlite": sqlite.insert(lifecycle_events).on_conflict_do_nothing(index_elements=["event_id"]),
}
_WITH_EVENT = lifecycle_deliveries.outerjoin(
    lifecycle_events, lifecycle_events.c.event_id == lifecycle_deliveries.c.event_id
)


class LifecycleRepository(Repository):
    """Writing, claiming and publishing lifecycle events; their webhook deliveries."""

    # -- events ------------------------------------------------------------------------------

    def add_lifecycle_events(self, events: Sequence[NewLifecycleEvent]) -> None:
        """Store events in this transaction, in the order given (their publishing order);
        one whose id is stored already is left as it is."""
        if not events:
            return
        now = self._clock()
        self._conn.execute(
            _ADD_EVENTS[self._conn.dialect.name],
            [
                {
                    "event_id": e.event_id,
                    "run_id": e.run_id,
                    "type": e.type,
                    "cloudevent": dict(e.cloudevent),
                    "created_at": now,
                    "published_at": None,
                }
                for e in events
            ],
        )

    def claim_lifecycle_events(self, limit: int) -> list[LifecycleEventEntry]:
        """Unpublished events, oldest first, locked for this transaction; a run's events
        only up to the first one another transaction holds (its order is kept)."""
        rows = self._conn.execute(_CLAIM_EVENTS, {"limit": limit}).mappings().all()
        claimed = [_event(row) for row in rows]
        run_ids = sorted({e.run_id for e in claimed if e.run_id is not None})
        if not run_ids:
            return claimed
        barrier: dict[str, int] = {}
        for part in chunks(run_ids):
            found = self._conn.execute(
                _FIRST_NOT_HELD, {"run_ids": list(part), "held": [e.id for e in claimed]}
            ).all()
            barrier.update((str(run_id), int(first)) for run_id, first in found)
        return [
            e
            for e in claimed
            if e.run_id is None or e.run_id not in barrier or e.id < barrier[e.run_id]
        ]

    def mark_lifecycle_published(self, ids: Sequence[int], at: datetime) -> None:
        for part in chunks(list(ids)):
            self._conn.execute(
                update(lifecycle_events)
                .where(lifecycle_events.c.id.in_(part))
                .values(published_at=at)
            )

    def list_lifecycle_events(
        self, *, run_id: str | None = None, limit: int = 100
    ) -> list[LifecycleEventEntry]:
        """Stored events, in the order they were written (of ``run_id`` only, if given)."""
        stmt = select(*_EVENT_COLUMNS).order_by(lifecycle_events.c.id).limit(limit)
        if run_id is not None:
            stmt = stmt.where(lifecycle_events.c.run_id == run_id)
        return [_event(row) for row in self._conn.execute(stmt).mappings()]

    # -- deliveries --------------------------------------------------------------------------

    def add_deliveries(
        self, deliveries: Sequence[tuple[LifecycleEventEntry, str]], due_at: datetime
    ) -> None:
        """A pending delivery of each (event, sink name), due at ``due_at``."""
        self._insert(
            lifecycle_deliveries,
            [
                {
                    "event_id": event.event_id,
                    "run_id": event.run_id,
                    "sink": sink,
                    "status": DeliveryStatus.PENDING.value,
                    "attempts": 0,
                    "due_at": due_at,
                    "created_at": due_at,
                }
                for event, sink in deliveries
            ],
        )

    def claim_due_deliveries(
        self, now: datetime, limit: int, *, lease_until: datetime
    ) -> list[DueDelivery]:
        """Pending deliveries due by ``now`` (oldest due first), leased until
        ``lease_until``: nobody else takes them meanwhile, and if their poster dies they
        come due again then."""
        stmt = self._claim(
            select(
                lifecycle_deliveries.c.id,
                lifecycle_deliveries.c.event_id,
                lifecycle_deliveries.c.sink,
                lifecycle_deliveries.c.attempts,
            )
            .where(
                lifecycle_deliveries.c.status == DeliveryStatus.PENDING.value,
                lifecycle_deliveries.c.due_at <= now,
            )
            .order_by(lifecycle_deliveries.c.due_at, lifecycle_deliveries.c.id)
            .limit(limit)
        )
        rows = self._conn.execute(stmt).mappings().all()
        if not rows:
            return []
        ids = [int(row["id"]) for row in rows]
        self._conn.execute(
            update(lifecycle_deliveries)
            .where(lifecycle_deliveries.c.id.in_(ids))
            .values(due_at=lease_until)
        )
        events = dict(
            self._conn.execute(
                select(lifecycle_events.c.event_id, lifecycle_events.c.cloudevent).where(
                    lifecycle_events.c.event_id.in_({str(row["event_id"]) for row in rows})
                )
            ).all()
        )
        return [
            DueDelivery(
                id=int(row["id"]),
                event_id=str(row["event_id"]),
                sink=str(row["sink"]),
                attempts=int(row["attempts"]),
                cloudevent=events.get(row["event_id"]) or {},
            )
            for row in rows
        ]

    def record_delivery_outcomes(self, outcomes: Sequence[DeliveryOutcome]) -> None:
        """Each delivery delivered, due again at its retry time, or failed for good."""
        for outcome in outcomes:
            if not outcome.counted:
                self._conn.execute(
                    update(lifecycle_deliveries)
                    .where(lifecycle_deliveries.c.id == outcome.id)
                    .values(due_at=outcome.retry_at or outcome.at)
                )
                continue
            values: dict[str, Any] = {
                "attempts": lifecycle_deliveries.c.attempts + 1,
                "last_status_code": outcome.status_code,
            }
            if outcome.delivered:
                values.update(status=DeliveryStatus.DELIVERED.value, finished_at=outcome.at)
            elif outcome.retry_at is not None:
                values.update(due_at=outcome.retry_at, last_error=outcome.error)
            else:
                values.update(
                    status=DeliveryStatus.FAILED.value,
                    last_error=outcome.error,
                    finished_at=outcome.at,
                )
            self._conn.execute(
                update(lifecycle_deliveries)
                .where(lifecycle_deliveries.c.id == outcome.id)
                .values(values)
            )

    def list_deliveries(
        self,
        *,
        status: DeliveryStatus | None = None,
        run_id: str | None = None,
        limit: int = 100,
    ) -> list[DeliveryEntry]:
        """Deliveries, newest first (of one status or run, if given)."""
        stmt = (
            select(*_DELIVERY_COLUMNS)
            .select_from(_WITH_EVENT)
            .order_by(lifecycle_deliveries.c.id.desc())
            .limit(limit)
        )
        if status is not None:
            stmt = stmt.where(lifecycle_deliveries.c.status == status.value)
        if run_id is not None:
            stmt = stmt.where(lifecycle_deliveries.c.run_id == run_id)
        return [_delivery(row) for row in self._conn.execute(stmt).mappings()]

    def redeliver(self, delivery_id: int, now: datetime) -> DeliveryEntry:
        """Make a delivery pending and due now, with its attempts counted afresh.

        NotFound when there is no such delivery."""
        updated = self._conn.execute(
            update(lifecycle_deliveries)
            .where(lifecycle_deliveries.c.id == delivery_id)
            .values(status=DeliveryStatus.PENDING.value, attempts=0, due_at=now, finished_at=None)
        )
        if updated.rowcount == 0:
            raise NotFound(f"lifecycle event delivery {delivery_id} not found")
        row = (
            self._conn.execute(
                select(*_DELIVERY_COLUMNS)
                .select_from(_WITH_EVENT)
                .where(lifecycle_deliveries.c.id == delivery_id)
            )
            .mappings()
            .one()
        )
        return _delivery(row)


def _event(row: RowMapping) -> LifecycleEventEntry:
    return LifecycleEventEntry(
        id=int(row["id"]),
        event_id=str(row["event_id"]),
        run_id=None if row["run_id"] is None else str(row["run_id"]),
        type=str(row["type"]),
        cloudevent=row["cloudevent"],
        created_at=row["created_at"],
        published_at=row["published_at"],
    )


def _delivery(row: RowMapping) -> DeliveryEntry:
    return DeliveryEntry(
        id=int(row["id"]),
        event_id=str(row["event_id"]),
        event_type=None if row["event_type"] is None else str(row["event_type"]),
        run_id=None if row["run_id"] is None else str(row["run_id"]),
        sink=str(row["sink"]),
        status=DeliveryStatus(row["status"]),
        attempts=int(row["attempts"]),
        due_at=row["due_at"],
        last_error=row["last_error"],
        last_status_code=row["last_status_code"],
        created_at=row["created_at"],
        finished_at=row["finished_at"],
    )
