"""Writes saved run states: run rows, changed executions and units, events and commands.

A batch of runs the caller has locked (``save_runs``): every table gets one statement,
whatever the number of runs. A burst of worker results touching a hundred runs then costs
a handful of statements instead of a thousand, which is what keeps many small runs fast on
PostgreSQL. There the save's writes whose results nobody reads (the run rows, executions,
units, events and, unless flow control must read them first, the attempts) go to the
server as one statement (:mod:`.write_batch`): each statement is a round trip while the
runs are locked and their successors wait.

On PostgreSQL the batch also announces itself (:mod:`.run_notices`): the run rows' update
carries ``pg_notify('treadle_run_changes', <the batch's run ids>)`` in a subquery of its
``WHERE``, delivered when the transaction commits; it costs no statement of its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any

from sqlalchemy import Connection, bindparam, func, select

from treadle.scheduler.core import commands as cmd
from treadle.scheduler.core.events import Event
from treadle.scheduler.core.state import RunState
from treadle.scheduler.store.bulk import bulk_insert, queue_update
from treadle.scheduler.store.codec import changed_run_columns
from treadle.scheduler.store.command_rows import CommandRows, CommandRowWriter, HeldCommand
from treadle.scheduler.store.decision_codec import encode_event
from treadle.scheduler.store.execution_writer import (
    ExecutionChanges,
    apply_changes,
    collect_executions,
)
from treadle.scheduler.store.models import run_events, runs
from treadle.scheduler.store.run_notices import RUN_CHANGES_CHANNEL, run_changes_notice
from treadle.scheduler.store.write_batch import WriteBatch

Clock = Callable[[], datetime]


@dataclass(frozen=True)
class RunChange:
    """One run's save: the state it came from, the new state, its events and commands."""

    old: RunState | None
    new: RunState
    events: Sequence[tuple[Event, datetime]]
    commands: Sequence[cmd.Command]


@dataclass(frozen=True)
class SavedRuns:
    """What saving a batch did: each run's new version, whether the outbox got work, and
    the outbox rows held for the saver to publish itself after commit."""

    versions: Mapping[str, int]
    wrote_outbox: bool
    held: Sequence[HeldCommand] = ()
    #: The claim kind (concurrency, rate) each dispatch held back by flow control waits on.
    flow_waits: Sequence[str] = ()


def run_row_values(old: RunState | None, new: RunState, updated_at: datetime) -> dict[str, Any]:
    """The run-row columns to write: those whose fields changed (all when ``old`` is None)."""
    values = changed_run_columns(old, new)
    values["updated_at"] = updated_at
    return values


@cache
def _locked_update(columns: tuple[str, ...]) -> Any:
    """``UPDATE runs SET <columns>, version = :k_new_version WHERE id = :k_id`` (run locked)."""
    values: dict[str, Any] = {name: bindparam(name) for name in columns}
    values["version"] = bindparam("k_new_version")
    return runs.update().where(runs.c.id == bindparam("k_id")).values(values)


#: The notice of a batch of run rows' updates (see ``RunWriter._queue_rows``).
_NOTICE_CONDITION = f"(SELECT pg_notify('{RUN_CHANGES_CHANNEL}', :notice)) IS NOT NULL"

_LAST_SEQS = (
    select(run_events.c.run_id, func.max(run_events.c.seq))
    .where(run_events.c.run_id.in_(bindparam("run_ids", expanding=True)))
    .group_by(run_events.c.run_id)
)


class RunWriter:
    """Collects what a batch of saves writes and writes it one statement per table."""

    def __init__(
        self,
        connection: Connection,
        clock: Clock,
        write_commands: CommandRowWriter,
        *,
        hold_outgoing: timedelta | None = None,
        notify: bool = True,
        notify_outbox: bool = False,
        prepared: bool = False,
    ) -> None:
        self._conn = connection
        self._clock = clock
        self._write_commands = write_commands
        self._hold_outgoing = hold_outgoing
        #: Whether outbox rows written wake the schedulers (a client's saves).
        self._notify_outbox = notify_outbox
        postgres = connection.dialect.name == "postgresql"
        #: NOTIFY the saved runs (PostgreSQL only; ``TREADLE_RUN_CHANGE_NOTICES``).
        self._notify = notify and postgres
        #: Each changed run's last event seq before this save (``write_locked_rows``).
        self._first_seqs: dict[str, int] = {}
        #: PostgreSQL: the save's writes, sent as one statement (:mod:`.write_batch`).
        self._writes = WriteBatch(prepared=prepared) if postgres else None

    def write_locked_rows(
        self,
        changes: Sequence[RunChange],
        versions: Mapping[str, int],
        last_seqs: dict[str, int],
    ) -> dict[str, int]:
        """Update the run rows of runs locked at ``versions``; returns the new versions.

        ``last_seqs`` (each run's last event seq, read with its lock) is where the events
        of :meth:`write_contents` are numbered from; the run rows get the new last seq,
        and ``last_seqs`` is brought up to date for the events to be written.
        """
        self._first_seqs = self._known_last_seqs(changes, last_seqs)
        updated_at = self._clock()
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        new_versions: dict[str, int] = {}
        for change in changes:
            run_id = change.new.run_id
            values = run_row_values(change.old, change.new, updated_at)
            last_seqs[run_id] = self._first_seqs[run_id] + len(change.events)
            values["last_seq"] = last_seqs[run_id]
            new_versions[run_id] = versions[run_id] + 1
            values["k_id"] = run_id
            values["k_new_version"] = new_versions[run_id]
            columns = tuple(k for k in values if not k.startswith("k_"))
            groups.setdefault(columns, []).append(values)
        if self._writes is not None:  # PostgreSQL
            self._queue_rows(groups, run_changes_notice(new_versions) if self._notify else None)
            return new_versions
        for columns, rows in groups.items():
            self._conn.execute(_locked_update(columns), rows)
        return new_versions

    def _queue_rows(
        self, groups: Mapping[tuple[str, ...], Sequence[Mapping[str, Any]]], notice: str | None
    ) -> None:
        """PostgreSQL: the run rows' updates join the save's other writes (one per group of
        changed columns); the notice rides on the first, as ``AND (SELECT pg_notify(...))
        IS NOT NULL`` (``void`` is not null; an init plan, run once)."""
        assert self._writes is not None
        for columns, rows in groups.items():
            values = [
                {"id": row["k_id"], **{c: row[c] for c in columns}, "version": row["k_new_version"]}
                for row in rows
            ]
            queue_update(
                self._writes,
                self._conn,
                runs,
                ("id",),
                values,
                condition=_NOTICE_CONDITION if notice is not None else "",
                extra={"notice": notice} if notice is not None else None,
            )
            notice = None

    def write_contents(self, changes: Sequence[RunChange]) -> SavedRuns:
        """Executions and units, events and commands of every change; what went to the
        outbox (the versions are :meth:`write_locked_rows`'s)."""
        executions = ExecutionChanges()
        for change in changes:
            collect_executions(change.old, change.new, executions)
        # On PostgreSQL the run rows, executions, units, events and attempts go as one
        # statement, sent when the commands' rows are written.
        writes = self._writes
        apply_changes(self._conn, executions, writes)
        self._append_events(changes, writes)
        rows = CommandRows(
            self._conn,
            self._clock,
            hold_for=self._hold_outgoing,
            writes=writes,
            notify_outbox=self._notify_outbox,
        )
        for change in changes:
            if change.commands:
                now = change.events[-1][1] if change.events else self._clock()
                rows.for_run(change.new, now)
                self._write_commands(rows, change.commands)
        rows.flush()  # (sends the queued writes first)
        return SavedRuns(
            {}, wrote_outbox=rows.wrote_outbox, held=rows.held, flow_waits=rows.flow_waits
        )

    def _known_last_seqs(
        self, changes: Sequence[RunChange], last_seqs: Mapping[str, int]
    ) -> dict[str, int]:
        """Each changed run's last event seq: as read with its lock, else (a run locked
        some other way) from its event log."""
        run_ids = {c.new.run_id for c in changes}
        known = {run_id: last_seqs[run_id] for run_id in run_ids if run_id in last_seqs}
        unknown = sorted(run_ids - set(known))
        if unknown:
            found = dict(self._conn.execute(_LAST_SEQS, {"run_ids": unknown}).all())
            known.update((run_id, int(found.get(run_id) or 0)) for run_id in unknown)
        return known

    def _append_events(self, changes: Sequence[RunChange], writes: WriteBatch | None) -> None:
        logging = [c for c in changes if c.events]
        if not logging:
            return
        last = dict(self._first_seqs)
        recorded_at = self._clock()
        rows: list[dict[str, Any]] = []
        for change in logging:
            run_id = change.new.run_id
            seq = int(last.get(run_id) or 0)
            for event, at in change.events:
                seq += 1
                rows.append(
                    {
                        "run_id": run_id,
                        "seq": seq,
                        "kind": event.kind,
                        "payload": encode_event(event),
                        "at": at,
                        "recorded_at": recorded_at,
                    }
                )
            last[run_id] = seq
        bulk_insert(self._conn, run_events, rows, writes=writes)
