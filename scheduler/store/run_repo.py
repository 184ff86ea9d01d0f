"""Runs: creating, locking, loading and saving a run's whole state with its events and commands.

``save_run`` is the heart of the store: in one transaction it bumps the run's version
(optimistic concurrency), writes the executions and units that changed, appends the events
that led to the new state and turns the commands into outbox, attempt, timer and inquiry
rows. Whoever calls it (the embedded runner, a scheduler process) gets all of it or none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.exc import IntegrityError

from treadle.common.errors import NotFound
from treadle.common.statuses import RunStatus
from treadle.scheduler.core import commands as cmd
from treadle.scheduler.core.events import Event
from treadle.scheduler.core.state import Execution, RunState, Unit
from treadle.scheduler.store.base import Repository
from treadle.scheduler.store.codec import (
    decode_event,
    encode_event,
    execution_from_row,
    run_from_row,
    run_to_row,
    unit_from_row,
)
from treadle.scheduler.store.command_writer import CommandWriter, QueueFor, default_queue_for
from treadle.scheduler.store.entries import RunSummary
from treadle.scheduler.store.errors import DuplicateRunError, StaleRunError
from treadle.scheduler.store.execution_writer import (
    apply_changes,
    diff_executions,
    write_executions,
)
from treadle.scheduler.store.models import run_events, runs, task_executions, task_units

# Statements on the hot path are built once: SQLAlchemy spends far longer constructing and
# keying a statement than SQLite spends running it.
_LOCK_RUN = select(runs.c.version).where(runs.c.id == bindparam("run_id")).with_for_update()
_LAST_SEQ = select(func.max(run_events.c.seq)).where(run_events.c.run_id == bindparam("run_id"))


@cache
def _update_run_statement(columns: tuple[str, ...], check_version: bool) -> Any:
    """``UPDATE runs SET <columns>, version = version + 1 WHERE id = :k_id [AND version = ...]``."""
    stmt = runs.update().where(runs.c.id == bindparam("k_id"))
    if check_version:
        stmt = stmt.where(runs.c.version == bindparam("k_version"))
    values: dict[str, Any] = {name: bindparam(name) for name in columns}
    values["version"] = runs.c.version + 1
    return stmt.values(values).returning(runs.c.version)


@dataclass(frozen=True, slots=True)
class RecordedEvent:
    """One entry of a run's event log: what happened, when the core was told, when stored."""

    seq: int
    event: Event
    at: datetime
    recorded_at: datetime


class RunRepository(Repository):
    """Run rows, their executions and units, and their event logs."""

    def insert_run(
        self,
        state: RunState,
        *,
        definition_version: int | None = None,
        idempotency_key: str | None = None,
        trigger_event_id: str | None = None,
    ) -> None:
        """Create the run (version 1). Raises DuplicateRunError if its id or a key is taken."""
        row = run_to_row(state)
        if definition_version is not None:
            row["definition_version"] = definition_version
        row.update(
            idempotency_key=idempotency_key,
            trigger_event_id=trigger_event_id,
            updated_at=self._clock(),
            version=1,
        )
        try:
            with self._conn.begin_nested():
                self._conn.execute(runs.insert(), row)
        except IntegrityError:
            raise self._duplicate(state.run_id, idempotency_key, trigger_event_id) from None
        changes = diff_executions(state.run_id, {}, state.executions)
        apply_changes(self._conn, state.run_id, changes)

    def _duplicate(
        self, run_id: str, idempotency_key: str | None, trigger_event_id: str | None
    ) -> DuplicateRunError:
        if idempotency_key is not None:
            existing = self.find_run_by_idempotency_key(idempotency_key)
            if existing is not None:
                return DuplicateRunError(
                    f"a run with idempotency key {idempotency_key!r} already exists: {existing}",
                    existing_run_id=existing,
                )
        if trigger_event_id is not None:
            existing = self._conn.execute(
                select(runs.c.id).where(runs.c.trigger_event_id == trigger_event_id)
            ).scalar_one_or_none()
            if existing is not None:
                return DuplicateRunError(
                    f"event {trigger_event_id!r} already started run {existing}",
                    existing_run_id=existing,
                )
        return DuplicateRunError(f"run {run_id} already exists", existing_run_id=run_id)

    def find_run_by_idempotency_key(self, key: str) -> str | None:
        return self._conn.execute(
            select(runs.c.id).where(runs.c.idempotency_key == key)
        ).scalar_one_or_none()

    def lock_run(self, run_id: str) -> int:
        """Hold the run until the transaction ends (``FOR UPDATE``); returns its version.

        On SQLite the unit of work already holds the database's write lock.
        """
        version = self._conn.execute(_LOCK_RUN, {"run_id": run_id}).scalar_one_or_none()
        if version is None:
            raise NotFound(f"run {run_id} not found")
        return int(version)

    def run_version(self, run_id: str) -> int | None:
        return self._conn.execute(
            select(runs.c.version).where(runs.c.id == run_id)
        ).scalar_one_or_none()

    def load_run(self, run_id: str) -> RunState:
        row = self._conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
        if row is None:
            raise NotFound(f"run {run_id} not found")
        return run_from_row(row, self._load_executions(run_id))

    def _load_executions(self, run_id: str) -> dict[int, Execution]:
        units: dict[int, list[Unit]] = defaultdict(list)
        unit_rows = self._conn.execute(
            select(task_units)
            .where(task_units.c.run_id == run_id)
            .order_by(task_units.c.execution_id, task_units.c.position)
        ).mappings()
        for unit_row in unit_rows:
            units[unit_row["execution_id"]].append(unit_from_row(unit_row))
        execution_rows = self._conn.execute(
            select(task_executions)
            .where(task_executions.c.run_id == run_id)
            .order_by(task_executions.c.execution_id)
        ).mappings()
        return {
            row["execution_id"]: execution_from_row(row, tuple(units.get(row["execution_id"], ())))
            for row in execution_rows
        }

    def save_run(
        self,
        old: RunState | None,
        new: RunState,
        events: Sequence[tuple[Event, datetime]],
        commands: Sequence[cmd.Command],
        *,
        expected_version: int | None = None,
        queue_for: QueueFor = default_queue_for,
    ) -> int:
        """Persist ``new`` (derived from ``old`` by ``events``) and its ``commands``.

        ``old`` must be the state ``new`` was computed from, as loaded or last saved: only
        executions and units that are different objects are written. ``old=None`` rewrites
        all of them. Returns the run's new version; raises StaleRunError when
        ``expected_version`` is given and the stored version differs.
        """
        now = events[-1][1] if events else self._clock()
        version = self._update_run_row(old, new, expected_version)
        write_executions(self._conn, old, new)
        self._append_events(new.run_id, events)
        CommandWriter(self._conn, self._clock, new, now, queue_for).write(commands)
        return version

    def _update_run_row(self, old: RunState | None, new: RunState, expected: int | None) -> int:
        row = run_to_row(new)
        values: dict[str, Any] = {
            key: row[key] for key in ("status", "core", "started_at", "finished_at")
        }
        if old is None or old.context is not new.context:
            for key in ("context", "depth", "parent_run_id", "parent_attempt_id"):
                values[key] = row[key]
        if old is None or old.vars is not new.vars:
            values["vars"] = row["vars"]
        if old is None or old.output is not new.output or old.error is not new.error:
            values["output"] = row["output"]
            values["error"] = row["error"]
        if (
            old is None
            or old.workflow != new.workflow
            or old.created_at != new.created_at
            or old.definition_version != new.definition_version
        ):
            for key in ("workflow", "created_at", "definition_version"):
                values[key] = row[key]
        values["updated_at"] = self._clock()
        stmt = _update_run_statement(tuple(values), expected is not None)
        version = self._conn.execute(
            stmt, {**values, "k_id": new.run_id, "k_version": expected}
        ).scalar_one_or_none()
        if version is None:
            actual = self.run_version(new.run_id)
            if actual is None:
                raise NotFound(f"run {new.run_id} not found")
            raise StaleRunError(new.run_id, expected or 0, actual)
        return int(version)

    def _append_events(self, run_id: str, events: Sequence[tuple[Event, datetime]]) -> None:
        if not events:
            return
        last = self._conn.execute(_LAST_SEQ, {"run_id": run_id}).scalar_one_or_none()
        recorded_at = self._clock()
        first = (last or 0) + 1
        self._insert(
            run_events,
            [
                {
                    "run_id": run_id,
                    "seq": first + offset,
                    "kind": event.kind,
                    "payload": encode_event(event),
                    "at": at,
                    "recorded_at": recorded_at,
                }
                for offset, (event, at) in enumerate(events)
            ],
        )

    def list_events(self, run_id: str, *, after_seq: int = 0) -> list[RecordedEvent]:
        """The run's event log in order (for replay, audit and golden files)."""
        rows = self._conn.execute(
            select(run_events)
            .where(run_events.c.run_id == run_id, run_events.c.seq > after_seq)
            .order_by(run_events.c.seq)
        ).mappings()
        return [
            RecordedEvent(
                seq=row["seq"],
                event=decode_event(row["payload"]),
                at=row["at"],
                recorded_at=row["recorded_at"],
            )
            for row in rows
        ]

    def list_runs(
        self, *, status: RunStatus | None = None, workflow: str | None = None, limit: int = 50
    ) -> list[RunSummary]:
        """Runs, newest first."""
        stmt = select(
            runs.c.id,
            runs.c.workflow,
            runs.c.status,
            runs.c.created_at,
            runs.c.finished_at,
            runs.c.parent_run_id,
        )
        if status is not None:
            stmt = stmt.where(runs.c.status == status.value)
        if workflow is not None:
            stmt = stmt.where(runs.c.workflow == workflow)
        stmt = stmt.order_by(runs.c.created_at.desc().nulls_last(), runs.c.id.desc()).limit(limit)
        return [_summary(row) for row in self._conn.execute(stmt).mappings()]

    def child_runs(self, run_id: str) -> list[str]:
        """Ids of the runs started by ``run_id``'s tasks, oldest first."""
        rows = self._conn.execute(
            select(runs.c.id)
            .where(runs.c.parent_run_id == run_id)
            .order_by(runs.c.created_at.asc().nulls_last(), runs.c.id)
        )
        return [row[0] for row in rows]


def _summary(row: Mapping[Any, Any]) -> RunSummary:
    return RunSummary(
        id=row["id"],
        workflow=row["workflow"],
        status=RunStatus(row["status"]),
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        parent_run_id=row["parent_run_id"],
    )
