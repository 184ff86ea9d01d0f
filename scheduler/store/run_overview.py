"""Reading a big run without loading every unit: counts, the first failures, cursor pages.

A with_items execution over thousands of items has thousands of unit rows, and
``load_run`` decodes every one; showing the run (the run document, ``treadle runs show``,
``Client.get``) needs only how many items stand in each status and the first few that
failed. :meth:`RunOverviewRepository.load_run_overview` reads exactly that: the run row,
its executions, the units of ordinary tasks, per-status counts of with_items units
(``GROUP BY``) and the first failed units of each execution (a window function). The items
themselves are read a page at a time, by position after a cursor, never with ``OFFSET``
(:meth:`RunOverviewRepository.unit_page`), the way the HTTP API will page them.

Call these in a snapshot (``Store.snapshot``) so the statements see one committed state.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import and_, bindparam, func, select

from treadle.common.errors import NotFound, ParameterError
from treadle.common.statuses import RunStatus, TaskStatus
from treadle.scheduler.core.state import RunState, Unit
from treadle.scheduler.store.base import Repository
from treadle.scheduler.store.codec import execution_from_row, run_from_row, unit_from_row
from treadle.scheduler.store.models import runs, task_executions, task_units

#: How many failed items a summary shows, first by position.
FIRST_FAILURES = 5
#: The most items one page may hold.
MAX_UNIT_PAGE = 1000
_FAILED = (TaskStatus.FAILED.value, TaskStatus.TIMED_OUT.value)

# The statements of every overview, built once: building them anew per read cost more
# than running them (SQLAlchemy also keeps each one's cache key).
_RUN_ROW = select(runs).where(runs.c.id == bindparam("run_id"))
_EXECUTION_ROWS = (
    select(task_executions)
    .where(task_executions.c.run_id == bindparam("run_id"))
    .order_by(task_executions.c.execution_id)
)
#: The units of the executions that are not with_items (one each, as a rule).
_PLAIN_UNIT_ROWS = (
    select(task_units)
    .join(
        task_executions,
        and_(
            task_executions.c.run_id == task_units.c.run_id,
            task_executions.c.execution_id == task_units.c.execution_id,
            task_executions.c.with_items.is_(False),
        ),
    )
    .where(task_units.c.run_id == bindparam("run_id"))
    .order_by(task_units.c.execution_id, task_units.c.position)
)


@dataclass(frozen=True, slots=True)
class ItemSummary:
    """How the items of one with_items execution stand: counts by status, first failures."""

    total: int
    by_status: Mapping[TaskStatus, int]
    attempts: int
    first_failures: tuple[Unit, ...]

    @classmethod
    def of(cls, units: Iterable[Unit], failures: int = FIRST_FAILURES) -> ItemSummary:
        """The summary of units already in memory (the same as the store computes)."""
        counts: dict[TaskStatus, int] = defaultdict(int)
        attempts = total = 0
        failed: list[Unit] = []
        for unit in units:
            total += 1
            counts[unit.status] += 1
            attempts += unit.attempt
            if unit.status.is_unsuccessful and len(failed) < failures:
                failed.append(unit)
        return cls(total, dict(counts), attempts, tuple(failed))


@dataclass(frozen=True, slots=True)
class RunOverview:
    """A run read for showing, not for deciding.

    ``state`` is the run with every execution, but with_items executions carry no units:
    ``items`` summarises those, by execution id. Never feed ``state`` to the core.
    """

    state: RunState
    items: Mapping[int, ItemSummary]


@dataclass(frozen=True, slots=True)
class UnitPage:
    """Units of one execution in position order, and the cursor of the next page (or None)."""

    execution: int
    units: tuple[Unit, ...]
    next_cursor: str | None


def encode_unit_cursor(execution: int, position: int) -> str:
    """The opaque cursor of a page ending at this unit."""
    raw = json.dumps([execution, position], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_unit_cursor(cursor: str) -> tuple[int, int]:
    """``(execution, position)`` of a cursor from :func:`encode_unit_cursor`."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        execution, position = json.loads(raw)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise _bad_cursor(cursor) from None
    if not (isinstance(execution, int) and isinstance(position, int)):
        raise _bad_cursor(cursor)
    return execution, position


def _bad_cursor(cursor: str) -> ParameterError:
    return ParameterError([f"{cursor!r} is not a next cursor a page returned"], subject="cursor")


class RunOverviewRepository(Repository):
    """Reads of a run for showing it: summaries of with_items executions, pages of units."""

    def run_status(self, run_id: str) -> tuple[int, RunStatus] | None:
        """The run's version and status (one small row), or None for an unknown id."""
        row = self._conn.execute(
            select(runs.c.version, runs.c.status).where(runs.c.id == run_id)
        ).first()
        return None if row is None else (int(row[0]), RunStatus(row[1]))

    def load_run_overview(self, run_id: str, *, failures: int = FIRST_FAILURES) -> RunOverview:
        """The run with its with_items executions summarised (NotFound for an unknown id)."""
        key = {"run_id": run_id}
        row = self._conn.execute(_RUN_ROW, key).mappings().first()
        if row is None:
            raise NotFound(f"run {run_id} not found")
        execution_rows = list(self._conn.execute(_EXECUTION_ROWS, key).mappings())
        fanned = {r["execution_id"] for r in execution_rows if r["with_items"]}
        units = self._plain_units(run_id) if len(fanned) < len(execution_rows) else {}
        items = self._summaries(run_id, fanned, failures) if fanned else {}
        executions = {
            r["execution_id"]: execution_from_row(r, units.get(r["execution_id"], ()))
            for r in execution_rows
        }
        return RunOverview(run_from_row(row, executions), items)

    def _plain_units(self, run_id: str) -> dict[int, list[Unit]]:
        """The units of the executions that are not with_items (one each, as a rule)."""
        rows = self._conn.execute(_PLAIN_UNIT_ROWS, {"run_id": run_id}).mappings()
        units: dict[int, list[Unit]] = defaultdict(list)
        for unit_row in rows:
            units[unit_row["execution_id"]].append(unit_from_row(unit_row))
        return units

    def _summaries(self, run_id: str, fanned: set[int], failures: int) -> dict[int, ItemSummary]:
        counts: dict[int, dict[TaskStatus, int]] = {e: {} for e in fanned}
        attempts: dict[int, int] = defaultdict(int)
        grouped = self._conn.execute(
            select(
                task_units.c.execution_id,
                task_units.c.status,
                func.count(),
                func.coalesce(func.sum(task_units.c.attempt), 0),
            )
            .where(task_units.c.run_id == run_id)
            .group_by(task_units.c.execution_id, task_units.c.status)
        )
        for execution_id, status, count, tried in grouped:
            if execution_id in fanned:
                counts[execution_id][TaskStatus(status)] = int(count)
                attempts[execution_id] += int(tried)
        failed: dict[int, list[Unit]] = defaultdict(list)
        if failures > 0:
            for execution_id, unit in self._first_failures(run_id, failures):
                if execution_id in fanned:
                    failed[execution_id].append(unit)
        return {
            e: ItemSummary(
                sum(counts[e].values()), counts[e], attempts[e], tuple(failed.get(e, ()))
            )
            for e in sorted(fanned)
        }

    def _first_failures(self, run_id: str, failures: int) -> list[tuple[int, Unit]]:
        """The first ``failures`` failed units of each execution, by position."""
        rank = (
            func.row_number()
            .over(partition_by=task_units.c.execution_id, order_by=task_units.c.position)
            .label("rank")
        )
        ranked = (
            select(task_units, rank)
            .where(task_units.c.run_id == run_id, task_units.c.status.in_(_FAILED))
            .subquery()
        )
        rows = self._conn.execute(
            select(ranked)
            .where(ranked.c.rank <= failures)
            .order_by(ranked.c.execution_id, ranked.c.position)
        ).mappings()
        return [(r["execution_id"], unit_from_row(r)) for r in rows]

    def unit_page(
        self, run_id: str, execution: int, *, cursor: str | None = None, limit: int = 100
    ) -> UnitPage:
        """Up to ``limit`` units of ``execution`` after ``cursor``, in position order.

        The cursor names its execution: a cursor of another execution is a ParameterError.
        """
        if not 1 <= limit <= MAX_UNIT_PAGE:
            raise ParameterError(
                [f"a page holds 1 to {MAX_UNIT_PAGE} items, not {limit}"], subject="limit"
            )
        after = -1
        if cursor is not None:
            of, after = decode_unit_cursor(cursor)
            if of != execution:
                raise ParameterError(
                    [f"{cursor!r} pages execution {of}, not {execution} of run {run_id}"],
                    subject="cursor",
                )
        rows = list(
            self._conn.execute(
                select(task_units)
                .where(
                    task_units.c.run_id == run_id,
                    task_units.c.execution_id == execution,
                    task_units.c.position > after,
                )
                .order_by(task_units.c.position)
                .limit(limit + 1)
            ).mappings()
        )
        page = rows[:limit]
        next_cursor = None
        if len(rows) > limit:
            next_cursor = encode_unit_cursor(execution, page[-1]["position"])
        return UnitPage(execution, tuple(unit_from_row(r) for r in page), next_cursor)
