"""Outside events: the record of every event received, who waits for which, and triggers.

An event is recorded once under its id (``record_event`` is an insert that does nothing
when the id exists, so sending the same event twice is harmless and detectable). Routing
needs the runs that may want an event: ``event_waits`` rows (written by the core's
``AwaitEvent`` commands) hold shell-style patterns, which SQL cannot match, so
:meth:`EventRepository.waits_for_event` narrows the rows in SQL (the exact type, or any
pattern with a wildcard) and matches the patterns in Python. Event triggers live in the
published definitions; :meth:`EventRepository.latest_definition_versions` tells a caller
which versions are current, so it re-reads a definition only when a new one is published.

Events belong to a workspace: an id is unique within its workspace, and an event reaches
the waits of that workspace's runs only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from treadle.common.access import DEFAULT_WORKSPACE
from treadle.common.patterns import WILDCARDS, event_matches, has_wildcard
from treadle.scheduler.store.base import Repository
from treadle.scheduler.store.codec import encode_value
from treadle.scheduler.store.models import definitions, event_waits, events, runs


@dataclass(frozen=True, slots=True)
class EventEntry:
    """One received event."""

    id: str
    type: str
    subject: str | None
    data: Any
    received_at: datetime
    workspace: str = DEFAULT_WORKSPACE


@dataclass(frozen=True, slots=True)
class EventWaitEntry:
    """Something in run ``run_id`` waits for events matching these patterns."""

    wait_id: str
    run_id: str
    event_type: str
    subject: str | None
    deadline: datetime | None
    created_at: datetime

    def matches(self, event_type: str, subject: str | None) -> bool:
        """Whether an event of this type and subject reaches the wait (its filter aside).

        A wait without a subject pattern takes any subject; a wait with one never takes an
        event without a subject unless the pattern matches the empty text (``*``).
        """
        return event_matches(
            event_type, subject, type_pattern=self.event_type, subject_pattern=self.subject
        )


class EventRepository(Repository):
    """Recording events, finding the waits they may release, and the current definitions."""

    def record_event(
        self,
        event_id: str,
        event_type: str,
        subject: str | None,
        data: Any,
        received_at: datetime,
        *,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> bool:
        """Record an event; False (and nothing written) when ``event_id`` is already known
        in ``workspace``.

        Two transactions recording the same id at once: one inserts, the other waits for it
        and then finds the id taken (PostgreSQL's unique index), so exactly one returns True.
        """
        insert: Any = (postgresql.insert if self._postgres else sqlite.insert)(events)
        statement = insert.values(
            workspace=workspace,
            id=event_id,
            type=event_type,
            subject=subject,
            data=encode_value(data),
            received_at=received_at,
        ).on_conflict_do_nothing(index_elements=["workspace", "id"])
        return bool(self._conn.execute(statement).rowcount == 1)

    def get_received_event(
        self, event_id: str, *, workspace: str = DEFAULT_WORKSPACE
    ) -> EventEntry | None:
        stmt = select(events).where(events.c.workspace == workspace, events.c.id == event_id)
        row = self._conn.execute(stmt).mappings().first()
        return None if row is None else _event(row)

    def list_received_events(
        self,
        *,
        event_type: str | None = None,
        subject: str | None = None,
        limit: int = 50,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> list[EventEntry]:
        """The newest events of ``workspace`` first; ``event_type`` and ``subject`` are
        shell-style patterns."""
        stmt = (
            select(events)
            .where(events.c.workspace == workspace)
            .order_by(events.c.received_at.desc(), events.c.id.desc())
        )
        if event_type is not None and not has_wildcard(event_type):
            stmt = stmt.where(events.c.type == event_type)
        found: list[EventEntry] = []
        for row in self._conn.execute(stmt).mappings():
            entry = _event(row)
            if not event_matches(
                entry.type, entry.subject, type_pattern=event_type, subject_pattern=subject
            ):
                continue
            found.append(entry)
            if len(found) >= limit:
                break
        return found

    def runs_started_by(
        self, event_ids: list[str], *, workspace: str = DEFAULT_WORKSPACE
    ) -> dict[str, list[str]]:
        """``{event id: [run ids]}``: the runs event triggers started for these events of
        ``workspace`` (a run keeps the id of the event that started it), by workflow ref
        within an event."""
        if not event_ids:
            return {}
        stmt = (
            select(runs.c.trigger_event_id, runs.c.id)
            .where(
                runs.c.workspace == workspace,
                runs.c.trigger_event_id.in_(sorted(set(event_ids))),
            )
            .order_by(runs.c.trigger_event_id, runs.c.workflow)
        )
        found: dict[str, list[str]] = {}
        for event_id, run_id in self._conn.execute(stmt).all():
            found.setdefault(str(event_id), []).append(str(run_id))
        return found

    def waits_for_event(
        self, event_type: str, subject: str | None, *, workspace: str = DEFAULT_WORKSPACE
    ) -> list[EventWaitEntry]:
        """The waits of ``workspace``'s runs whose type and subject patterns match, oldest
        first."""
        wildcard = or_(*(event_waits.c.event_type.contains(w, autoescape=True) for w in WILDCARDS))
        stmt = (
            select(event_waits)
            .join(runs, runs.c.id == event_waits.c.run_id)
            .where(runs.c.workspace == workspace)
            .where(or_(event_waits.c.event_type == event_type, wildcard))
            .order_by(event_waits.c.created_at, event_waits.c.wait_id)
        )
        candidates = (_wait(row) for row in self._conn.execute(stmt).mappings())
        return [wait for wait in candidates if wait.matches(event_type, subject)]

    def list_event_waits(self, *, run_id: str | None = None) -> list[EventWaitEntry]:
        """Every open wait (of one run), oldest first."""
        stmt = select(event_waits).order_by(event_waits.c.created_at, event_waits.c.wait_id)
        if run_id is not None:
            stmt = stmt.where(event_waits.c.run_id == run_id)
        return [_wait(row) for row in self._conn.execute(stmt).mappings()]

    def latest_definition_versions(self) -> dict[tuple[str, str], int]:
        """``{(owner workspace, ref): newest version}`` of every published definition (one
        short query)."""
        stmt = select(
            definitions.c.workspace, definitions.c.ref, func.max(definitions.c.version)
        ).group_by(definitions.c.workspace, definitions.c.ref)
        return {
            (str(owner), str(ref)): int(version)
            for owner, ref, version in self._conn.execute(stmt).all()
        }


def _event(row: Mapping[Any, Any]) -> EventEntry:
    return EventEntry(
        id=row["id"],
        type=row["type"],
        subject=row["subject"],
        data=row["data"],
        received_at=row["received_at"],
        workspace=row["workspace"],
    )


def _wait(row: Mapping[Any, Any]) -> EventWaitEntry:
    return EventWaitEntry(
        wait_id=row["wait_id"],
        run_id=row["run_id"],
        event_type=row["event_type"],
        subject=row["subject"],
        deadline=row["deadline"],
        created_at=row["created_at"],
    )
