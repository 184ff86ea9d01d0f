"""An attempt as a task's page shows it: what it was given and what its action printed.

What the action printed (``attempt_outputs``, :mod:`~treadle.scheduler.store.output_tables`)
is recorded with the attempt's result, in the transaction that applies it
(``RunService.settle``): one row per attempt that printed anything, the first report's
output kept (a duplicate report, or a late one for an attempt the scheduler already ended,
changes nothing, but a late report's output is still kept when none was).

What the attempt was given is not stored again: the dispatch's outbox row holds the
rendered input (with secret references, never values) for as long as the run is kept.
It is found by the run, the row's time (an outbox row's ``created_at`` is its attempt's
``dispatched_at``: written together and moved together when flow control lets a held
dispatch go) and the attempt id in the payload.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, tuple_
from sqlalchemy.dialects import postgresql, sqlite

from treadle.common.messages import ActionOutput, TaskDispatch
from treadle.scheduler.core import commands as cmd
from treadle.scheduler.store.base import Repository, chunks
from treadle.scheduler.store.decision_codec import decode_command
from treadle.scheduler.store.entries import AttemptEntry
from treadle.scheduler.store.errors import CodecError
from treadle.scheduler.store.models import attempts, outbox
from treadle.scheduler.store.output_tables import attempt_outputs

__all__ = ["AttemptDetailsRepository", "AttemptKey"]

#: Where a page of attempts ends: (execution, position, attempt).
AttemptKey = tuple[int, int, int]

_ORDER = (attempts.c.execution_id, attempts.c.position, attempts.c.attempt)


class AttemptDetailsRepository(Repository):
    """Recording what attempts printed; reading a task's attempts with input and output."""

    def record_outputs(self, outputs: Sequence[tuple[str, ActionOutput]]) -> int:
        """Keep each attempt's output unless one is kept already (first wins); outputs of
        unknown attempts (a purged run's) are dropped. Returns how many were kept. Two
        statements for the whole batch; the callers hold the attempts' runs locked."""
        wanted: dict[str, ActionOutput] = {}
        for attempt_id, output in outputs:
            if not output.empty:
                wanted.setdefault(attempt_id, output)
        if not wanted:
            return 0
        runs_of: dict[str, str] = {}
        for part in chunks(sorted(wanted)):
            found = self._conn.execute(
                select(attempts.c.attempt_id, attempts.c.run_id).where(
                    attempts.c.attempt_id.in_(part)
                )
            )
            runs_of.update({str(attempt_id): str(run_id) for attempt_id, run_id in found})
        now = self._clock()
        rows = [
            {
                "attempt_id": attempt_id,
                "run_id": runs_of[attempt_id],
                "stdout": output.stdout,
                "stderr": output.stderr,
                "stdout_truncated": output.stdout_truncated,
                "stderr_truncated": output.stderr_truncated,
                "recorded_at": now,
            }
            for attempt_id, output in wanted.items()
            if attempt_id in runs_of
        ]
        if rows:
            insert: Any = (postgresql.insert if self._postgres else sqlite.insert)(attempt_outputs)
            self._conn.execute(insert.on_conflict_do_nothing(index_elements=["attempt_id"]), rows)
        return len(rows)

    def attempts_page(
        self, run_id: str, executions: Sequence[int], *, after: AttemptKey | None, limit: int
    ) -> list[AttemptEntry]:
        """Up to ``limit`` attempts of ``executions`` of the run, by execution, unit and
        attempt number, past ``after``."""
        if not executions:
            return []
        stmt = select(attempts).where(
            attempts.c.run_id == run_id, attempts.c.execution_id.in_(sorted(set(executions)))
        )
        if after is not None:
            stmt = stmt.where(tuple_(*_ORDER) > tuple_(*after))
        rows = self._conn.execute(stmt.order_by(*_ORDER).limit(limit)).mappings()
        return [AttemptEntry.from_row(row) for row in rows]

    def attempt_outputs(self, attempt_ids: Sequence[str]) -> dict[str, ActionOutput]:
        """The kept output of each of these attempts that printed anything."""
        found: dict[str, ActionOutput] = {}
        for part in chunks(sorted(set(attempt_ids))):
            rows = self._conn.execute(
                select(attempt_outputs).where(attempt_outputs.c.attempt_id.in_(part))
            ).mappings()
            for row in rows:
                found[row["attempt_id"]] = ActionOutput(
                    stdout=row["stdout"],
                    stderr=row["stderr"],
                    stdout_truncated=row["stdout_truncated"],
                    stderr_truncated=row["stderr_truncated"],
                )
        return found

    def dispatches_of(
        self, run_id: str, entries: Sequence[AttemptEntry]
    ) -> dict[str, TaskDispatch]:
        """The dispatch (rendered input, secret references in place of values) each of
        these attempts of ``run_id`` was sent with, found in the run's outbox rows."""
        if not entries:
            return {}
        attempt_of = outbox.c.payload[("dispatch", "attempt_id")].as_string()
        stmt = select(outbox.c.payload).where(
            outbox.c.run_id == run_id,
            outbox.c.kind == cmd.DispatchTask.kind,
            outbox.c.created_at.in_(sorted({entry.dispatched_at for entry in entries})),
            attempt_of.in_([entry.attempt_id for entry in entries]),
        )
        found: dict[str, TaskDispatch] = {}
        for (payload,) in self._conn.execute(stmt):
            dispatch = _dispatch(payload)
            if dispatch is not None:
                found.setdefault(dispatch.attempt_id, dispatch)
        return found


def _dispatch(payload: Any) -> TaskDispatch | None:
    if not isinstance(payload, Mapping):
        return None
    try:
        command = decode_command(payload)
    except (CodecError, ValidationError, TypeError):  # a row this release cannot read
        return None
    return command.dispatch if isinstance(command, cmd.DispatchTask) else None
