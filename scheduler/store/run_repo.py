"""Runs: creating, locking, loading and saving a run's whole state with its events and commands.

``save_runs`` is the heart of the store: in one transaction it bumps the versions of runs
locked by ``lock_runs``, writes the executions and units that changed, appends the events
that led to the new states and turns the commands into outbox, attempt, timer and inquiry
rows. Whoever calls it (the embedded runner, a scheduler process) gets all of it or none.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial

from sqlalchemy import bindparam, select
from sqlalchemy.dialects import postgresql
from sqlalchemy.exc import IntegrityError

from treadle.common.access import DEFAULT_WORKSPACE
from treadle.common.errors import ConflictError, NotFound
from treadle.common.statuses import RunStatus
from treadle.scheduler.core.events import Event
from treadle.scheduler.core.state import Execution, RunState, Unit
from treadle.scheduler.store.base import Repository, chunks
from treadle.scheduler.store.codec import (
    execution_from_row,
    run_from_row,
    run_to_row,
    unit_from_row,
)
from treadle.scheduler.store.command_rows import CommandRowWriter
from treadle.scheduler.store.decision_codec import decode_event
from treadle.scheduler.store.entries import RunPage, RunSummary
from treadle.scheduler.store.errors import DuplicateRunError
from treadle.scheduler.store.execution_writer import apply_changes, diff_executions
from treadle.scheduler.store.models import run_events, runs, task_executions, task_units
from treadle.scheduler.store.run_listing import RunFilter, list_run_page
from treadle.scheduler.store.run_writer import RunChange, RunWriter, SavedRuns

#: PostgreSQL: insert a run unless its id, idempotency key or trigger event is taken.
_INSERT_RUN_UNLESS_TAKEN = postgresql.insert(runs).on_conflict_do_nothing().returning(runs.c.id)

#: How often a run is read again when a writer committed between its statements.
_CONSISTENT_READ_TRIES = 20

# Statements on the hot path are built once: SQLAlchemy spends far longer constructing and
# keying a statement than SQLite spends running it.
_LOCK_RUN = (
    select(runs.c.version, runs.c.last_seq)
    .where(runs.c.id == bindparam("run_id"))
    .with_for_update()
)

_RUNS_BY_ID = select(runs).where(runs.c.id.in_(bindparam("run_ids", expanding=True)))
_UNITS_OF_RUNS = (
    select(task_units)
    .where(task_units.c.run_id.in_(bindparam("run_ids", expanding=True)))
    .order_by(task_units.c.run_id, task_units.c.execution_id, task_units.c.position)
)
_EXECUTIONS_OF_RUNS = (
    select(task_executions)
    .where(task_executions.c.run_id.in_(bindparam("run_ids", expanding=True)))
    .order_by(task_executions.c.run_id, task_executions.c.execution_id)
)


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
        if self._postgres:  # one statement, where a savepoint costs two more round trips
            inserted = self._conn.execute(_INSERT_RUN_UNLESS_TAKEN, row).first()
            if inserted is None:
                raise self._duplicate(state, idempotency_key, trigger_event_id)
        else:
            try:
                with self._conn.begin_nested():
                    self._conn.execute(runs.insert(), row)
            except IntegrityError:
                raise self._duplicate(state, idempotency_key, trigger_event_id) from None
        # Nobody else sees the row before commit: this transaction holds it already.
        self._note_locked(state.run_id, 1, row.get("last_seq", 0))
        changes = diff_executions(state.run_id, {}, state.executions)
        apply_changes(self._conn, changes)

    def _duplicate(
        self, state: RunState, idempotency_key: str | None, trigger_event_id: str | None
    ) -> DuplicateRunError:
        run_id = state.run_id
        if idempotency_key is not None:
            existing = self.find_run_by_idempotency_key(idempotency_key, state.workspace)
            if existing is not None:
                return DuplicateRunError(
                    f"a run with idempotency key {idempotency_key!r} already exists: {existing}",
                    existing_run_id=existing,
                )
        if trigger_event_id is not None:
            existing = self._conn.execute(
                select(runs.c.id).where(
                    runs.c.workspace == state.workspace,
                    runs.c.trigger_event_id == trigger_event_id,
                    runs.c.workflow == state.workflow,
                )
            ).scalar_one_or_none()
            if existing is not None:
                return DuplicateRunError(
                    f"event {trigger_event_id!r} already started run {existing} "
                    f"of {state.workflow}",
                    existing_run_id=existing,
                )
        return DuplicateRunError(f"run {run_id} already exists", existing_run_id=run_id)

    def find_run_by_idempotency_key(
        self, key: str, workspace: str = DEFAULT_WORKSPACE
    ) -> str | None:
        """The run started with idempotency key ``key`` in ``workspace`` (keys are unique
        per workspace)."""
        return self._conn.execute(
            select(runs.c.id).where(runs.c.workspace == workspace, runs.c.idempotency_key == key)
        ).scalar_one_or_none()

    def run_workspace(self, run_id: str) -> str | None:
        """The workspace run ``run_id`` belongs to; None for an unknown run."""
        found = self._conn.execute(
            select(runs.c.workspace).where(runs.c.id == run_id)
        ).scalar_one_or_none()
        return None if found is None else str(found)

    def lock_run(self, run_id: str) -> int:
        """Hold the run until the transaction ends (``FOR UPDATE``); returns its version.

        On SQLite the unit of work already holds the database's write lock.
        """
        if run_id in self._locked:
            return self._locked[run_id]
        row = self._conn.execute(_LOCK_RUN, {"run_id": run_id}).first()
        if row is None:
            raise NotFound(f"run {run_id} not found")
        self._locked[run_id] = int(row[0])
        self._last_seqs[run_id] = int(row[1])
        return int(row[0])

    def run_version(self, run_id: str) -> int | None:
        return self._conn.execute(
            select(runs.c.version).where(runs.c.id == run_id)
        ).scalar_one_or_none()

    def load_run(self, run_id: str) -> RunState:
        """The run as one committed version, whether or not this transaction locked it.

        The run row, its units and its executions are three statements; on PostgreSQL each
        sees what was committed when it began, so a scheduler committing in between would
        give a torn state (the run still ``running``, its last task already succeeded).
        In a snapshot (``Store.snapshot``, where readers should be) or with the run locked
        by this transaction, one read is consistent. Otherwise (an unlocked read inside a
        unit of work) every change of a run raises its version, so reading the version
        again after the rest tells whether the reads belong together; if not, they are
        read again.
        """
        if self._read_only or run_id in self._locked:
            return self._read_together([run_id])[run_id]
        for _ in range(_CONSISTENT_READ_TRIES):
            row = self._conn.execute(select(runs).where(runs.c.id == run_id)).mappings().first()
            if row is None:
                raise NotFound(f"run {run_id} not found")
            executions = self._executions_of([run_id]).get(run_id, {})
            if self.run_version(run_id) == row["version"]:
                return run_from_row(row, executions)
        raise ConflictError(
            f"run {run_id} changed during each of {_CONSISTENT_READ_TRIES} reads; try again"
        )

    def load_runs(self, run_ids: Sequence[str]) -> dict[str, RunState]:
        """Several runs at once, as :meth:`load_run` reads each.

        The runs this transaction holds (or every run, in a snapshot) cost three statements
        per :data:`~.base.CHUNK` of runs, whatever their number: a scheduler's batch often
        names runs it has never seen (started by a client), and reading them one by one was
        three round trips each. Runs not held are read one by one (the consistent read of
        :meth:`load_run`). Raises :class:`NotFound` for a run that does not exist.
        """
        together = [r for r in dict.fromkeys(run_ids) if self._read_only or r in self._locked]
        loaded = self._read_together(together)
        return {r: loaded[r] if r in loaded else self.load_run(r) for r in run_ids}

    def _read_together(self, run_ids: Sequence[str]) -> dict[str, RunState]:
        """Runs whose reads are consistent as they are (held, or in a snapshot): three
        statements per chunk of runs. Raises :class:`NotFound` for a missing run."""
        loaded: dict[str, RunState] = {}
        for part in chunks(run_ids):
            rows = {
                row["id"]: row
                for row in self._conn.execute(_RUNS_BY_ID, {"run_ids": list(part)}).mappings()
            }
            executions = self._executions_of(part)
            for run_id in part:
                if run_id not in rows:
                    raise NotFound(f"run {run_id} not found")
                loaded[run_id] = run_from_row(rows[run_id], executions.get(run_id, {}))
        return loaded

    def _executions_of(self, run_ids: Sequence[str]) -> dict[str, dict[int, Execution]]:
        """The executions (with their units) of each of ``run_ids``, in two statements."""
        units: dict[tuple[str, int], list[Unit]] = defaultdict(list)
        for unit_row in self._conn.execute(_UNITS_OF_RUNS, {"run_ids": list(run_ids)}).mappings():
            key = (unit_row["run_id"], unit_row["execution_id"])
            units[key].append(unit_from_row(unit_row))
        found: dict[str, dict[int, Execution]] = defaultdict(dict)
        for row in self._conn.execute(_EXECUTIONS_OF_RUNS, {"run_ids": list(run_ids)}).mappings():
            key = (row["run_id"], row["execution_id"])
            found[key[0]][key[1]] = execution_from_row(row, tuple(units.get(key, ())))
        return found

    def lock_runs(self, run_ids: Sequence[str]) -> dict[str, int]:
        """Hold several runs until the transaction ends; returns each found run's version.

        Rows are locked in id order, so schedulers locking overlapping batches cannot
        deadlock. Runs that do not exist are missing from the result. A run this
        transaction holds already costs no statement: its version is known (only
        :meth:`save_runs` changes it while the lock is held).
        """
        return self._lock_runs(run_ids)

    def save_runs(
        self,
        changes: Sequence[RunChange],
        versions: Mapping[str, int],
        *,
        write_commands: CommandRowWriter,
        hold_outgoing: timedelta | None = None,
        notify_outbox: bool = False,
    ) -> SavedRuns:
        """Persist a batch of runs locked by :meth:`lock_runs` at ``versions``.

        One statement per table for the whole batch; ``write_commands`` turns each run's
        commands into rows. Returns the runs' new versions, whether the outbox got work,
        and, with ``hold_outgoing``, the outbox rows held for the caller to publish after
        commit (see :mod:`.command_rows`). With ``notify_outbox``, outbox rows written
        wake the schedulers at commit (PostgreSQL ``NOTIFY`` on ``OUTBOX_CHANNEL``).
        """
        if not changes:
            return SavedRuns({}, wrote_outbox=False)
        writer = RunWriter(
            self._conn,
            self._clock,
            write_commands,
            hold_outgoing=hold_outgoing,
            notify=self._notify_run_changes,
            notify_outbox=notify_outbox,
            prepared=self._prepared_statements,
        )
        new_versions = writer.write_locked_rows(changes, versions, self._last_seqs)
        saved = writer.write_contents(changes)
        self._locked.update(new_versions)
        for listener in tuple(self._runs_saved):  # in-process watchers, told after commit
            self._after_commit.append(partial(listener, tuple(new_versions)))
        return SavedRuns(
            new_versions,
            wrote_outbox=saved.wrote_outbox,
            held=saved.held,
            flow_waits=saved.flow_waits,
        )

    def list_events(
        self, run_id: str, *, after_seq: int = 0, limit: int | None = None
    ) -> list[RecordedEvent]:
        """The run's event log in order (for replay, audit and golden files); with
        ``limit``, at most that many events after ``after_seq`` (a page of the log)."""
        stmt = (
            select(run_events)
            .where(run_events.c.run_id == run_id, run_events.c.seq > after_seq)
            .order_by(run_events.c.seq)
        )
        if limit is not None:
            stmt = stmt.limit(limit)
        rows = self._conn.execute(stmt).mappings()
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
        """The ``limit`` newest runs (see :meth:`list_runs_page` for the pages after them)."""
        where = RunFilter(status=status, workflow=workflow)
        return list(self.list_runs_page(where, limit=limit).runs)

    def list_runs_page(
        self, where: RunFilter | None = None, *, limit: int = 50, cursor: str | None = None
    ) -> RunPage:
        """One page of the runs matching ``where``, newest first, with the next page's cursor.

        Keyset pagination (``run_listing``): pages cover every matching run exactly once.
        """
        return list_run_page(self._conn, where or RunFilter(), limit=limit, cursor=cursor)

    def child_runs(self, run_id: str) -> list[str]:
        """Ids of the runs started by ``run_id``'s tasks, oldest first."""
        rows = self._conn.execute(
            select(runs.c.id)
            .where(runs.c.parent_run_id == run_id)
            .order_by(runs.c.created_at.asc().nulls_last(), runs.c.id)
        )
        return [row[0] for row in rows]
