"""Retention: removing ended runs (every row stored for them) and old outside events.

A database that keeps every run forever grows without bound, so ``treadle runs purge`` and
the scheduler's periodic purge (``TREADLE_RETENTION_DAYS``) remove runs that ended before a
cutoff, a few at a time. What is removed is a *tree*: a top-level run with every child run
below it, and only when every run of the tree has ended before the cutoff; a run whose
parent or child is still going is never touched.

:data:`PER_RUN_TABLES` is the one list of tables holding rows of a run. A feature that
stores rows per run adds its table here; ``tests/store/test_retention.py`` fails while a
table with a ``run_id`` column (or a key to ``runs``) is missing from it. The audit log
is deliberately not on it, though its entries may name runs: it records who did what and
must outlive what it mentions (it is append-only, see ``audit_repo.py``). Nor is
``schedule_fires`` (:data:`RUN_MENTIONS`): a fire belongs to its schedule, and "started
run X" stays true of it after run X is purged (beat notes such a run's end as ``gone``).
A rule's match that started a run (``rule_matches``) goes with the run: it holds the
trigger's payload, which is the run's data (matches that started nothing stay).

On PostgreSQL the runs of a tree are locked with ``FOR UPDATE SKIP LOCKED`` and their status
checked again under the lock before anything is deleted: a run a scheduler holds (a retry
or compensation starting it again) is skipped, and a control arriving after the purge finds
the run gone. On SQLite the unit of work's write lock serialises the purge with everyone.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Column, Table, and_, exists, func, or_, select

from treadle.common.statuses import RUN_TERMINAL, RunStatus
from treadle.scheduler.store.base import Repository, chunks
from treadle.scheduler.store.emergency_tables import emergency_stop_runs
from treadle.scheduler.store.flow_tables import flow_grants, flow_slots
from treadle.scheduler.store.lifecycle_tables import lifecycle_deliveries, lifecycle_events
from treadle.scheduler.store.models import (
    attempts,
    event_waits,
    events,
    inquiries,
    outbox,
    run_events,
    run_secrets,
    runs,
    task_executions,
    task_units,
    timers,
)
from treadle.scheduler.store.output_tables import attempt_outputs
from treadle.scheduler.store.rule_tables import rule_matches
from treadle.scheduler.store.schedule_tables import schedule_fires

#: Every table holding rows that belong to one run, with the column naming the run. The
#: rows of a purged run are deleted from each, in this order (``runs`` last).
PER_RUN_TABLES: tuple[tuple[Table, Column[str]], ...] = (
    (run_events, run_events.c.run_id),
    (outbox, outbox.c.run_id),
    (attempts, attempts.c.run_id),
    (attempt_outputs, attempt_outputs.c.run_id),
    (timers, timers.c.run_id),
    (inquiries, inquiries.c.run_id),
    (event_waits, event_waits.c.run_id),
    (task_units, task_units.c.run_id),
    (task_executions, task_executions.c.run_id),
    (run_secrets, run_secrets.c.run_id),
    (flow_slots, flow_slots.c.run_id),
    (flow_grants, flow_grants.c.run_id),
    (rule_matches, rule_matches.c.run_id),
    (lifecycle_deliveries, lifecycle_deliveries.c.run_id),
    (lifecycle_events, lifecycle_events.c.run_id),
    (emergency_stop_runs, emergency_stop_runs.c.run_id),
    (runs, runs.c.id),
)

#: Tables whose ``run_id`` names a run without belonging to it: their rows outlive the run.
RUN_MENTIONS: tuple[Table, ...] = (schedule_fires,)

#: How many candidate top-level runs one batch looks at, per run it may remove, before
#: giving up on finding more (trees still going are passed over, not counted).
_SCAN_FACTOR = 10


@dataclass(frozen=True, slots=True)
class PurgePosition:
    """Where the next batch's search for top-level runs starts (after this run)."""

    created_at: datetime
    run_id: str


@dataclass(frozen=True, slots=True)
class PurgeCandidates:
    """The trees a batch found: their runs (top-level run first), and how far it looked."""

    trees: tuple[tuple[str, ...], ...]
    #: Top-level runs passed over because a run of their tree has not ended (before the cutoff).
    skipped: int
    #: Where the next batch goes on from; ``None`` when there is nothing more to look at.
    next_position: PurgePosition | None

    @property
    def run_ids(self) -> list[str]:
        return [run_id for tree in self.trees for run_id in tree]


@dataclass(slots=True)
class PurgedRows:
    """Rows removed (or that would be) per table, and the trees skipped under a lock."""

    rows: dict[str, int] = field(default_factory=dict)
    locked: int = 0

    def add(self, table: str, count: int) -> None:
        if count:
            self.rows[table] = self.rows.get(table, 0) + count


class RetentionRepository(Repository):
    """Finding ended run trees older than a cutoff, and deleting every row of them."""

    def purge_candidates(
        self,
        cutoff: datetime,
        *,
        statuses: Collection[RunStatus] = RUN_TERMINAL,
        limit: int,
        after: PurgePosition | None = None,
    ) -> PurgeCandidates:
        """Up to about ``limit`` runs in whole trees whose top-level run has one of
        ``statuses`` (ended ones only), oldest first, every run of the tree ended before
        ``cutoff``. At least one tree when any qualifies, however big it is."""
        wanted = sorted(s.value for s in statuses if s in RUN_TERMINAL)
        if not wanted or limit < 1:
            return PurgeCandidates((), 0, None)
        scan = limit * _SCAN_FACTOR
        parent = runs.alias("parent")
        top_level = or_(
            runs.c.parent_run_id.is_(None),
            ~exists().where(parent.c.id == runs.c.parent_run_id),
        )
        stmt = (
            select(runs.c.id, runs.c.created_at)
            .where(
                runs.c.status.in_(wanted),
                runs.c.created_at < cutoff,
                runs.c.finished_at < cutoff,
                top_level,
            )
            .order_by(runs.c.created_at, runs.c.id)
            .limit(scan)
        )
        if after is not None:
            stmt = stmt.where(
                or_(
                    runs.c.created_at > after.created_at,
                    and_(runs.c.created_at == after.created_at, runs.c.id > after.run_id),
                )
            )
        roots = self._conn.execute(stmt).all()
        trees: list[tuple[str, ...]] = []
        taken = skipped = 0
        position: PurgePosition | None = None
        for start in range(0, len(roots), limit):
            page = roots[start : start + limit]
            found = self._ended_trees([str(row[0]) for row in page], cutoff)
            for row in page:
                position = PurgePosition(row[1], str(row[0]))
                tree = found.get(str(row[0]))
                if tree is None:
                    skipped += 1
                    continue
                trees.append(tree)
                taken += len(tree)
                if taken >= limit:
                    break
            if taken >= limit:
                break
        more = taken >= limit or len(roots) == scan
        return PurgeCandidates(tuple(trees), skipped, position if more else None)

    def _ended_trees(self, root_ids: Sequence[str], cutoff: datetime) -> dict[str, tuple[str, ...]]:
        """``{root: (root, descendants...)}`` for the roots whose every descendant has
        ended before ``cutoff``; the others are missing."""
        root_of = {root: root for root in root_ids}
        members: dict[str, list[str]] = {root: [root] for root in root_ids}
        going: set[str] = set()
        frontier = list(root_ids)
        while frontier:
            found: list[str] = []
            for part in chunks(frontier):
                stmt = select(
                    runs.c.id, runs.c.parent_run_id, runs.c.status, runs.c.finished_at
                ).where(runs.c.parent_run_id.in_(list(part)))
                for run_id, parent_id, status, finished_at in self._conn.execute(stmt).all():
                    if run_id in root_of:
                        continue  # a cycle of parents: stored data, but never loop on it
                    root = root_of[parent_id]
                    root_of[run_id] = root
                    members[root].append(run_id)
                    if not _ended_before(status, finished_at, cutoff):
                        going.add(root)
                    found.append(run_id)
            frontier = found
        return {root: tuple(ids) for root, ids in members.items() if root not in going}

    def purge_runs(
        self, trees: Sequence[Sequence[str]], cutoff: datetime, *, dry_run: bool = False
    ) -> tuple[list[str], PurgedRows]:
        """Delete every row of these trees' runs (or count them with ``dry_run``).

        The runs are locked first (PostgreSQL: ``FOR UPDATE SKIP LOCKED``, in id order) and
        checked again: a tree with a run held by someone else, no longer ended before
        ``cutoff``, or with outbox messages not yet published is left alone. Returns the
        removed run ids and the row counts per table.
        """
        purged = PurgedRows()
        ids = sorted({run_id for tree in trees for run_id in tree})
        still_ended: set[str] = set()
        for part in chunks(ids):
            stmt = (
                select(runs.c.id, runs.c.status, runs.c.finished_at)
                .where(runs.c.id.in_(list(part)))
                .order_by(runs.c.id)
            )
            for run_id, status, finished_at in self._conn.execute(self._claim(stmt)).all():
                if _ended_before(status, finished_at, cutoff):
                    still_ended.add(str(run_id))
        unsent = self._with_unsent_messages(ids)
        removed: list[str] = []
        for tree in trees:
            if all(run_id in still_ended and run_id not in unsent for run_id in tree):
                removed.extend(tree)
            else:
                purged.locked += 1
        for table, column in PER_RUN_TABLES:
            for part in chunks(removed):
                if dry_run:
                    counted = select(func.count()).select_from(table).where(column.in_(list(part)))
                    count = int(self._conn.execute(counted).scalar_one())
                else:
                    count = self._conn.execute(
                        table.delete().where(column.in_(list(part)))
                    ).rowcount
                purged.add(table.name, count)
        return removed, purged

    def _with_unsent_messages(self, run_ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for part in chunks(run_ids):
            stmt = (
                select(outbox.c.run_id)
                .where(outbox.c.run_id.in_(list(part)), outbox.c.sent_at.is_(None))
                .distinct()
            )
            found.update(str(row[0]) for row in self._conn.execute(stmt).all())
        return found

    def purge_events(
        self,
        cutoff: datetime,
        *,
        limit: int,
        dry_run: bool = False,
        leaving: Collection[str] = (),
    ) -> int:
        """Delete up to ``limit`` outside events received before ``cutoff`` that no run
        references (as the event that started it), oldest first; returns how many.

        With ``dry_run`` nothing is deleted and every such event is counted, references
        from the runs in ``leaving`` (runs a dry run would remove) not counting.
        """
        referenced = exists().where(
            runs.c.workspace == events.c.workspace, runs.c.trigger_event_id == events.c.id
        )
        if dry_run:
            unreferenced = select(func.count()).select_from(events)
            unreferenced = unreferenced.where(events.c.received_at < cutoff, ~referenced)
            count = int(self._conn.execute(unreferenced).scalar_one())
            return count + self._events_only_of(leaving, cutoff)
        stmt = (
            select(events.c.workspace, events.c.id)
            .where(events.c.received_at < cutoff, ~referenced)
            .order_by(events.c.received_at, events.c.id)
            .limit(limit)
        )
        by_workspace: dict[str, list[str]] = {}
        for workspace, event_id in self._conn.execute(self._claim(stmt)).all():
            by_workspace.setdefault(str(workspace), []).append(str(event_id))
        deleted = 0
        for workspace, ids in sorted(by_workspace.items()):
            for part in chunks(ids):
                stmt_delete = events.delete().where(
                    events.c.workspace == workspace, events.c.id.in_(list(part)), ~referenced
                )
                deleted += self._conn.execute(stmt_delete).rowcount
        return deleted

    def _events_only_of(self, run_ids: Collection[str], cutoff: datetime) -> int:
        """Events before ``cutoff`` that started runs of ``run_ids`` and no other run."""
        leaving = set(run_ids)
        started: dict[tuple[str, str], set[str]] = {}
        for part in chunks(sorted(leaving)):
            stmt = (
                select(events.c.workspace, events.c.id)
                .join(
                    runs,
                    (runs.c.trigger_event_id == events.c.id)
                    & (runs.c.workspace == events.c.workspace),
                )
                .where(runs.c.id.in_(list(part)), events.c.received_at < cutoff)
            )
            started.update(((str(w), str(e)), set()) for w, e in self._conn.execute(stmt).all())
        for part in chunks(sorted({event_id for _, event_id in started})):
            stmt = select(runs.c.workspace, runs.c.trigger_event_id, runs.c.id).where(
                runs.c.trigger_event_id.in_(list(part))
            )
            for row in self._conn.execute(stmt).all():
                key = (str(row[0]), str(row[1]))
                if key in started:
                    started[key].add(str(row[2]))
        return sum(1 for users in started.values() if users <= leaving)


def _ended_before(status: str, finished_at: datetime | None, cutoff: datetime) -> bool:
    return RunStatus(status) in RUN_TERMINAL and finished_at is not None and finished_at < cutoff
