"""Writes only the executions and units that changed between two states of a run.

The core never mutates: an execution or unit it did not touch is the *same object* in the
old and the new state (and ``Units`` shares untouched chunks of 64 units). Comparing with
``is`` therefore finds exactly what changed, at the cost of a pointer comparison per chunk,
and the changes go to the database as one bulk statement per kind (insert/update of
executions, insert/update of units, see ``bulk``; on PostgreSQL an insert and an update of
the same kind go as one upsert). A with_items execution of 5000 items
where 50 items moved writes 50 unit rows and one execution row.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, delete

from treadle.scheduler.core.state import Execution, RunState, Unit, Units
from treadle.scheduler.store.bulk import bulk_upsert
from treadle.scheduler.store.codec import execution_to_row, unit_to_row
from treadle.scheduler.store.models import task_executions, task_units
from treadle.scheduler.store.write_batch import WriteBatch

_EXECUTION_KEYS = ("run_id", "execution_id")
_UNIT_KEYS = ("run_id", "execution_id", "position")


@dataclass
class ExecutionChanges:
    """The rows to write for one save, grouped so each group is one bulk statement."""

    insert_executions: list[dict[str, Any]] = field(default_factory=list)
    update_executions: list[dict[str, Any]] = field(default_factory=list)
    insert_units: list[dict[str, Any]] = field(default_factory=list)
    update_units: list[dict[str, Any]] = field(default_factory=list)
    #: (run id, execution id, first position to delete) for unit lists that shrank
    truncate_units: list[tuple[str, int, int]] = field(default_factory=list)
    #: (run id, execution id) of executions that no longer exist
    delete_executions: list[tuple[str, int]] = field(default_factory=list)
    #: runs whose executions are rewritten wholesale (saved without an old state)
    replace_runs: list[str] = field(default_factory=list)

    def add_new(self, run_id: str, execution: Execution) -> None:
        self.insert_executions.append(execution_to_row(run_id, execution))
        self.insert_units.extend(
            unit_to_row(run_id, execution.id, position, unit)
            for position, unit in enumerate(execution.units)
        )

    def add_changed(self, run_id: str, old: Execution, new: Execution) -> None:
        self.update_executions.append(execution_to_row(run_id, new))
        if old.units is new.units:
            return
        kept = len(old.units)
        for position in _changed_positions(old.units, new.units):
            row = unit_to_row(run_id, new.id, position, new.units[position])
            (self.insert_units if position >= kept else self.update_units).append(row)
        if kept > len(new.units):
            self.truncate_units.append((run_id, new.id, len(new.units)))


def _changed_positions(old: Sequence[Unit], new: Sequence[Unit]) -> Iterator[int]:
    """Positions in ``new`` holding a unit that is not the object ``old`` had there.

    :class:`Units` shares unchanged chunks between versions, so whole chunks are skipped
    with one comparison; only a replaced chunk is compared unit by unit.
    """
    if isinstance(old, Units) and isinstance(new, Units) and old.CHUNK == new.CHUNK:
        size = new.CHUNK
        old_chunks = old.chunks
        for number, chunk in enumerate(new.chunks):
            previous = old_chunks[number] if number < len(old_chunks) else ()
            if chunk is previous:
                continue
            base = number * size
            for offset, unit in enumerate(chunk):
                if offset >= len(previous) or previous[offset] is not unit:
                    yield base + offset
        return
    kept = len(old)
    for position, unit in enumerate(new):
        if position >= kept or old[position] is not unit:
            yield position


def diff_executions(
    run_id: str,
    old: Mapping[int, Execution],
    new: Mapping[int, Execution],
    changes: ExecutionChanges | None = None,
) -> ExecutionChanges:
    """What to write to go from ``old`` to ``new`` (both the ``executions`` of a run state).

    Pass ``changes`` to add to rows collected for other runs: one bulk statement per kind
    then serves a whole batch of runs.
    """
    changes = changes if changes is not None else ExecutionChanges()
    if old is new:
        return changes
    for execution_id, execution in new.items():
        previous = old.get(execution_id)
        if previous is execution:
            continue
        if previous is None:
            changes.add_new(run_id, execution)
        else:
            changes.add_changed(run_id, previous, execution)
    changes.delete_executions.extend((run_id, eid) for eid in old if eid not in new)
    return changes


def collect_executions(
    old: RunState | None, new: RunState, changes: ExecutionChanges
) -> ExecutionChanges:
    """Add what ``new`` needs written to ``changes``.

    With ``old`` (the state ``new`` was derived from, as stored) only changes are written.
    Without it, the run's executions are replaced wholesale.
    """
    if old is None:
        changes.replace_runs.append(new.run_id)
        return diff_executions(new.run_id, {}, new.executions, changes)
    return diff_executions(new.run_id, old.executions, new.executions, changes)


def write_executions(connection: Connection, old: RunState | None, new: RunState) -> None:
    """Bring the executions and units of ``new.run_id`` in the database in line with ``new``."""
    apply_changes(connection, collect_executions(old, new, ExecutionChanges()))


def apply_changes(
    connection: Connection, changes: ExecutionChanges, writes: WriteBatch | None = None
) -> None:
    """Write ``changes``: deletions at once; the upserts of executions and units at once,
    or queued in ``writes`` (PostgreSQL) to go with the save's other writes."""
    for run_id in changes.replace_runs:
        connection.execute(delete(task_units).where(task_units.c.run_id == run_id))
        connection.execute(delete(task_executions).where(task_executions.c.run_id == run_id))
    for run_id, execution_id in changes.delete_executions:
        connection.execute(
            delete(task_units).where(
                task_units.c.run_id == run_id, task_units.c.execution_id == execution_id
            )
        )
        connection.execute(
            delete(task_executions).where(
                task_executions.c.run_id == run_id,
                task_executions.c.execution_id == execution_id,
            )
        )
    for run_id, execution_id, first in changes.truncate_units:
        connection.execute(
            delete(task_units).where(
                task_units.c.run_id == run_id,
                task_units.c.execution_id == execution_id,
                task_units.c.position >= first,
            )
        )
    bulk_upsert(
        connection,
        task_executions,
        _EXECUTION_KEYS,
        changes.insert_executions,
        changes.update_executions,
        writes=writes,
    )
    bulk_upsert(
        connection,
        task_units,
        _UNIT_KEYS,
        changes.insert_units,
        changes.update_units,
        writes=writes,
    )
