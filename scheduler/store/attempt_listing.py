"""A run's latest attempts with the task each one tried, for a timeline of attempts.

Each row of ``attempts`` is one try of one task (or of one item of a with_items task) on
a worker: when it was dispatched, started and finished, by which worker, how it ended.
The row names its execution by number only; the task's name is in ``task_executions``,
so :func:`latest_attempts` joins the two. A run may have many thousands of attempts (a
with_items task over a long list, retries), so only the latest ``limit`` are read, by
dispatch time (the ``attempts.run_id`` index narrows the scan), with the run's total.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, and_, func, select

from treadle.scheduler.store.entries import AttemptEntry
from treadle.scheduler.store.models import attempts, task_executions

__all__ = ["AttemptLine", "AttemptListing", "latest_attempts"]


@dataclass(frozen=True, slots=True)
class AttemptLine:
    """One attempt and the task it tried; ``item`` is the item's index for a with_items
    task (None for a task run once)."""

    task: str
    item: int | None
    attempt: AttemptEntry


@dataclass(frozen=True, slots=True)
class AttemptListing:
    """The latest attempts of a run, oldest dispatch first, and how many it has in all."""

    lines: tuple[AttemptLine, ...]
    total: int


def latest_attempts(connection: Connection, run_id: str, limit: int) -> AttemptListing:
    """The run's ``limit`` most recently dispatched attempts (oldest of them first), with
    the task each tried, and the run's count of attempts."""
    joined = attempts.join(
        task_executions,
        and_(
            task_executions.c.run_id == attempts.c.run_id,
            task_executions.c.execution_id == attempts.c.execution_id,
        ),
        isouter=True,
    )
    rows = connection.execute(
        select(attempts, task_executions.c.task, task_executions.c.with_items)
        .select_from(joined)
        .where(attempts.c.run_id == run_id)
        .order_by(attempts.c.dispatched_at.desc(), attempts.c.attempt_id.desc())
        .limit(limit)
    ).mappings()
    lines = [
        AttemptLine(
            task=str(row["task"]) if row["task"] is not None else f"#{row['execution_id']}",
            item=int(row["position"]) if row["with_items"] else None,
            attempt=AttemptEntry.from_row(row),
        )
        for row in rows
    ]
    total = connection.execute(
        select(func.count()).select_from(attempts).where(attempts.c.run_id == run_id)
    ).scalar_one()
    return AttemptListing(tuple(reversed(lines)), int(total))
