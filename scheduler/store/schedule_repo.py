"""Schedules and their fires as stored (``schedules``, ``schedule_fires``; migration 0014).

The rows only: what a schedule means (its rule and policies) is
:mod:`treadle.common.schedules`, what a due fire does is
:mod:`treadle.scheduler.core.schedule_plan`, and the transaction that records a fire and
starts its run is :mod:`treadle.scheduler.service.schedule_firing`. A fire's key is
(schedule, nominal instant): :meth:`ScheduleRepository.record_fire` inserts it only if no
one did, which is what keeps two beats from recording (and starting) one fire twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError

from treadle.common.errors import ConflictError
from treadle.scheduler.store.base import Repository, _upsert_statement
from treadle.scheduler.store.models import runs
from treadle.scheduler.store.schedule_tables import schedule_fires, schedules

__all__ = ["FireRow", "ScheduleRepository", "ScheduleRow"]


@dataclass(frozen=True, slots=True)
class ScheduleRow:
    """One ``schedules`` row, as stored (policies as their string values)."""

    id: str
    workspace: str
    name: str
    workflow: str
    cron: str | None
    interval_seconds: int | None
    timezone: str
    start_at: datetime | None
    end_at: datetime | None
    jitter_seconds: int
    parameters: Mapping[str, Any]
    overlap: str
    catchup_window_seconds: int
    missed: str
    pause_on_failure: bool
    enabled: bool
    paused_reason: str | None
    source: str
    declared_version: int | None
    cursor: datetime
    revision: int
    created_at: datetime
    created_by: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class FireRow:
    """One ``schedule_fires`` row: a fire, its outcome and (when it started one) its run."""

    schedule_id: str
    nominal_at: datetime
    due_at: datetime
    kind: str
    status: str
    reason: str | None
    run_id: str | None
    run_status: str | None
    recorded_at: datetime
    started_at: datetime | None


_SCHEDULE_FIELDS = tuple(f.name for f in fields(ScheduleRow))
_FIRE_FIELDS = tuple(f.name for f in fields(FireRow))


def _schedule(row: RowMapping) -> ScheduleRow:
    values = {name: row[name] for name in _SCHEDULE_FIELDS}
    values["parameters"] = dict(values["parameters"] or {})
    return ScheduleRow(**values)


def _fire(row: RowMapping) -> FireRow:
    return FireRow(**{name: row[name] for name in _FIRE_FIELDS})


class ScheduleRepository(Repository):
    """Creating, changing, finding and deleting schedules; recording and reading fires."""

    def insert_schedule(self, row: ScheduleRow) -> None:
        """Store a new schedule; ConflictError when its workspace has one of that name."""
        values = {name: getattr(row, name) for name in _SCHEDULE_FIELDS}
        values["parameters"] = dict(row.parameters)
        try:
            with self._conn.begin_nested():
                self._conn.execute(schedules.insert().values(**values))
        except IntegrityError:
            raise ConflictError(
                f"workspace {row.workspace!r} has a schedule named {row.name!r} already"
            ) from None

    def update_schedule(self, schedule_id: str, **values: Any) -> None:
        """Change columns of a schedule; its ``revision`` grows so beat notices."""
        if "parameters" in values:
            values["parameters"] = dict(values["parameters"])
        self._conn.execute(
            update(schedules)
            .where(schedules.c.id == schedule_id)
            .values(**values, revision=schedules.c.revision + 1)
        )

    def move_schedule_cursor(self, schedule_id: str, cursor: datetime) -> None:
        """Record that every fire up to ``cursor`` is accounted for (no revision change)."""
        self._conn.execute(
            update(schedules).where(schedules.c.id == schedule_id).values(cursor=cursor)
        )

    def schedule(self, workspace: str | None, name: str) -> ScheduleRow | None:
        """The schedule named ``name`` in ``workspace`` (any workspace when ``None``: the
        first by workspace)."""
        stmt = select(schedules).where(schedules.c.name == name)
        if workspace is not None:
            stmt = stmt.where(schedules.c.workspace == workspace)
        row = self._conn.execute(stmt.order_by(schedules.c.workspace)).mappings().first()
        return None if row is None else _schedule(row)

    def schedule_by_id(self, schedule_id: str) -> ScheduleRow | None:
        row = self._conn.execute(
            select(schedules).where(schedules.c.id == schedule_id)
        ).mappings().first()  # fmt: skip
        return None if row is None else _schedule(row)

    def claim_schedule(self, schedule_id: str) -> ScheduleRow | None:
        """Lock a schedule's row for this transaction; ``None`` when it is gone or another
        beat holds it (PostgreSQL, ``SKIP LOCKED``): that beat is firing it."""
        stmt = self._claim(select(schedules).where(schedules.c.id == schedule_id))
        row = self._conn.execute(stmt).mappings().first()
        return None if row is None else _schedule(row)

    def lock_schedule(self, schedule_id: str) -> ScheduleRow | None:
        """Lock a schedule's row for this transaction, waiting for a beat firing it."""
        stmt = self._lock_rows(select(schedules).where(schedules.c.id == schedule_id))
        row = self._conn.execute(stmt).mappings().first()
        return None if row is None else _schedule(row)

    def list_schedules(self, workspace: str | None = None) -> list[ScheduleRow]:
        """Schedules by workspace and name (one workspace's when given)."""
        stmt = select(schedules).order_by(schedules.c.workspace, schedules.c.name)
        if workspace is not None:
            stmt = stmt.where(schedules.c.workspace == workspace)
        return [_schedule(row) for row in self._conn.execute(stmt).mappings()]

    def schedule_revisions(self) -> dict[str, tuple[int, datetime]]:
        """Every schedule's revision and cursor, by id: what beat compares to reload."""
        rows = self._conn.execute(select(schedules.c.id, schedules.c.revision, schedules.c.cursor))
        return {row.id: (row.revision, row.cursor) for row in rows}

    def delete_schedule(self, schedule_id: str) -> None:
        """Remove a schedule and its fires."""
        self._conn.execute(
            delete(schedule_fires).where(schedule_fires.c.schedule_id == schedule_id)
        )
        self._conn.execute(delete(schedules).where(schedules.c.id == schedule_id))

    # -- fires ----------------------------------------------------------------------------

    def record_fire(self, fire: FireRow) -> bool:
        """Insert a fire unless its key is recorded already; whether this call inserted it."""
        values = {name: getattr(fire, name) for name in _FIRE_FIELDS}
        try:
            with self._conn.begin_nested():
                self._conn.execute(schedule_fires.insert().values(**values))
        except IntegrityError:
            return False
        return True

    def record_fires(self, rows: Sequence[FireRow]) -> None:
        """Insert fires in bulk (skips, under the schedule's lock), leaving any fire whose
        key is recorded already as it is."""
        if rows:
            stmt = _upsert_statement(
                self._conn.dialect.name, schedule_fires, ("schedule_id", "nominal_at"), ()
            )
            self._conn.execute(stmt, [{n: getattr(r, n) for n in _FIRE_FIELDS} for r in rows])

    def fire(self, schedule_id: str, nominal_at: datetime) -> FireRow | None:
        """The fire of a schedule at a nominal instant, if recorded."""
        row = (
            self._conn.execute(
                select(schedule_fires).where(
                    schedule_fires.c.schedule_id == schedule_id,
                    schedule_fires.c.nominal_at == nominal_at,
                )
            )
            .mappings()
            .first()
        )
        return None if row is None else _fire(row)

    def update_fire(self, schedule_id: str, nominal_at: datetime, **values: Any) -> None:
        self._conn.execute(
            update(schedule_fires)
            .where(
                schedule_fires.c.schedule_id == schedule_id,
                schedule_fires.c.nominal_at == nominal_at,
            )
            .values(**values)
        )

    def fires(
        self, schedule_id: str, *, limit: int = 100, newest_first: bool = True
    ) -> list[FireRow]:
        """A schedule's fires by nominal instant (newest first unless told otherwise)."""
        order = schedule_fires.c.nominal_at
        stmt = (
            select(schedule_fires)
            .where(schedule_fires.c.schedule_id == schedule_id)
            .order_by(order.desc() if newest_first else order)
            .limit(limit)
        )
        return [_fire(row) for row in self._conn.execute(stmt).mappings()]

    def fire_counts(self, schedule_id: str) -> dict[str, int]:
        """How many fires of each status a schedule has recorded."""
        rows = self._conn.execute(
            select(schedule_fires.c.status, func.count())
            .where(schedule_fires.c.schedule_id == schedule_id)
            .group_by(schedule_fires.c.status)
        )
        return {str(status): int(count) for status, count in rows}

    def open_fires(self, schedule_id: str) -> list[tuple[FireRow, str | None]]:
        """Fires still in play: buffered ones, and started ones whose run's end is not yet
        noted, each with its run's status now (``None`` for a run purged or never made)."""
        stmt = (
            select(schedule_fires, runs.c.status.label("current_run_status"))
            .select_from(schedule_fires.outerjoin(runs, runs.c.id == schedule_fires.c.run_id))
            .where(
                schedule_fires.c.schedule_id == schedule_id,
                or_(
                    schedule_fires.c.status == "buffered",
                    and_(
                        schedule_fires.c.status == "started",
                        schedule_fires.c.run_status.is_(None),
                    ),
                ),
            )
            .order_by(schedule_fires.c.nominal_at)
        )
        return [
            (_fire(row), row["current_run_status"]) for row in self._conn.execute(stmt).mappings()
        ]

    def prune_fires(self, schedule_id: str, keep: int) -> int:
        """Delete a schedule's fires older than its ``keep`` newest, but none still in play
        (buffered, or started with the run's end not yet noted); how many went."""
        newest = (
            select(schedule_fires.c.nominal_at)
            .where(schedule_fires.c.schedule_id == schedule_id)
            .order_by(schedule_fires.c.nominal_at.desc())
            .offset(keep - 1)
            .limit(1)
        )
        oldest_kept = self._conn.execute(newest).scalar_one_or_none()
        if oldest_kept is None:
            return 0
        settled = or_(
            schedule_fires.c.status.notin_(("buffered", "started")),
            schedule_fires.c.run_status.is_not(None),
        )
        deleted = self._conn.execute(
            delete(schedule_fires).where(
                schedule_fires.c.schedule_id == schedule_id,
                schedule_fires.c.nominal_at < oldest_kept,
                settled,
            )
        )
        return int(deleted.rowcount or 0)

    def schedules_with_open_fires(self) -> list[str]:
        """Ids of schedules with buffered fires or started runs not yet seen to end."""
        stmt = (
            select(schedule_fires.c.schedule_id)
            .where(
                or_(
                    schedule_fires.c.status == "buffered",
                    and_(
                        schedule_fires.c.status == "started",
                        schedule_fires.c.run_status.is_(None),
                    ),
                )
            )
            .distinct()
        )
        return [str(value) for value in self._conn.execute(stmt).scalars()]
