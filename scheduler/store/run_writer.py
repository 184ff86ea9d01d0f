"""Writes saved run states: run rows, changed executions and units, events and commands.

A batch of runs the caller has locked (``save_runs``): every table gets one statement,
whatever the number of runs. A burst of worker results touching a hundred runs then costs
a handful of statements instead of a thousand, which is what keeps many small runs fast on
PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import Connection, bindparam, func, select

from treadle.scheduler.core import commands as cmd
from treadle.scheduler.core.events import Event
from treadle.scheduler.core.state import RunState
from treadle.scheduler.store.codec import changed_run_columns
from treadle.scheduler.store.command_rows import CommandRows, CommandRowWriter
from treadle.scheduler.store.decision_codec import encode_event
from treadle.scheduler.store.execution_writer import (
    ExecutionChanges,
    apply_changes,
    collect_executions,
)
from treadle.scheduler.store.models import run_events, runs

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
    """What saving a batch did: each run's new version, and whether the outbox got work."""

    versions: Mapping[str, int]
    wrote_outbox: bool


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


_LAST_SEQS = (
    select(run_events.c.run_id, func.max(run_events.c.seq))
    .where(run_events.c.run_id.in_(bindparam("run_ids", expanding=True)))
    .group_by(run_events.c.run_id)
)


class RunWriter:
    """Collects what a batch of saves writes and writes it one statement per table."""

    def __init__(
        self, connection: Connection, clock: Clock, write_commands: CommandRowWriter
    ) -> None:
        self._conn = connection
        self._clock = clock
        self._write_commands = write_commands

    def write_locked_rows(
        self, changes: Sequence[RunChange], versions: Mapping[str, int]
    ) -> dict[str, int]:
        """Update the run rows of runs locked at ``versions``; returns the new versions."""
        updated_at = self._clock()
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        new_versions: dict[str, int] = {}
        for change in changes:
            run_id = change.new.run_id
            values = run_row_values(change.old, change.new, updated_at)
            new_versions[run_id] = versions[run_id] + 1
            values["k_id"] = run_id
            values["k_new_version"] = new_versions[run_id]
            columns = tuple(k for k in values if not k.startswith("k_"))
            groups.setdefault(columns, []).append(values)
        for columns, rows in groups.items():
            self._conn.execute(_locked_update(columns), rows)
        return new_versions

    def write_contents(self, changes: Sequence[RunChange]) -> bool:
        """Executions and units, events and commands of every change; True when a command
        went to the outbox."""
        executions = ExecutionChanges()
        for change in changes:
            collect_executions(change.old, change.new, executions)
        apply_changes(self._conn, executions)
        self._append_events(changes)
        rows = CommandRows(self._conn, self._clock)
        for change in changes:
            if change.commands:
                now = change.events[-1][1] if change.events else self._clock()
                rows.for_run(change.new, now)
                self._write_commands(rows, change.commands)
        rows.flush()
        return rows.wrote_outbox

    def _append_events(self, changes: Sequence[RunChange]) -> None:
        logging = [c for c in changes if c.events]
        if not logging:
            return
        run_ids = sorted({c.new.run_id for c in logging})
        last = dict(self._conn.execute(_LAST_SEQS, {"run_ids": run_ids}).all())
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
        self._conn.execute(run_events.insert(), rows)
