"""Concurrency slots and rate limits across runs: grant a dispatch's claims or hold it back.

A dispatch with claims (``DispatchTask.claims``, rendered by the core) leaves the
scheduler only once every claim holds: a slot of each concurrency key (``flow_slots``) and
room in each rate limit's window (``flow_grants``). Otherwise its outbox row waits with
``flow_key`` set, which relays skip, and :meth:`FlowRepository.release_held` lets it go
when the key frees (highest priority first, then oldest).

Why nothing leaks: a slot counts only while its holder lives (the attempt is queued or
running; the run has not ended), read from the same rows that record those facts, in the
transaction that grants the next slot. A worker killed with -9 holds its slot until the
reconciler ends its attempt as lost; a scheduler killed mid-transaction rolls back. No
process keeps a slot in memory. Each key's row in ``flow_keys`` is locked while its
slots are counted, so two schedulers never give out the same last slot.

The wait is not charged to the task: while a dispatch is held, its attempt's deadline and
timeout timer are stopped (:data:`HELD_TIMER_AT`); they start when it is released.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, delete, exists, func, insert, or_, select, update

from treadle.common.flow import ClaimKind, ClaimScope, FlowClaim
from treadle.common.messages import TaskDispatch
from treadle.common.statuses import RUN_TERMINAL, AttemptStatus
from treadle.scheduler.core import commands as cmd
from treadle.scheduler.core.ids import parse_attempt_id, unit_timer_id
from treadle.scheduler.core.state import TimerKind
from treadle.scheduler.store.base import Repository
from treadle.scheduler.store.decision_codec import decode_command
from treadle.scheduler.store.flow_tables import flow_grants, flow_keys, flow_slots
from treadle.scheduler.store.models import attempts, outbox, runs, timers

#: The fire time of a held attempt's timeout timer: it does not run until the release.
HELD_TIMER_AT = datetime(9999, 1, 1, tzinfo=UTC)

_LIVE_ATTEMPT = (AttemptStatus.QUEUED.value, AttemptStatus.RUNNING.value)
_ENDED_RUN = tuple(status.value for status in RUN_TERMINAL)


@dataclass(frozen=True)
class HeldBack:
    """Why a dispatch waits: the claim that does not hold, and until when at least."""

    claim: FlowClaim
    until: datetime | None
    reason: str


@dataclass
class FlowGate:
    """Decides claims inside one transaction (the caller's connection)."""

    conn: Connection
    #: Keys whose row this transaction has locked already.
    _locked: set[tuple[str, str]] = field(default_factory=set)

    @property
    def _postgres(self) -> bool:
        return self.conn.dialect.name == "postgresql"

    def admit(
        self,
        workspace: str,
        run_id: str,
        attempt_id: str,
        claims: Sequence[FlowClaim],
        now: datetime,
    ) -> HeldBack | None:
        """Take every claim for ``attempt_id`` (``None``), or none of them (why it waits)."""
        ordered = sorted(claims, key=lambda c: (c.key, c.kind.value))
        for claim in ordered:
            self._lock(workspace, claim.key)
        # A run's slot, once taken, serves every later task of the run: nothing to claim.
        needed = [
            claim
            for claim in ordered
            if not (claim.scope is ClaimScope.RUN and self._holds(workspace, claim.key, run_id))
        ]
        for claim in needed:
            held = self._check(workspace, claim, now)
            if held is not None:
                return held
        for claim in needed:
            self._take(workspace, run_id, attempt_id, claim, now)
        return None

    def _lock(self, workspace: str, key: str) -> None:
        if (workspace, key) in self._locked:
            return
        row = {"workspace": workspace, "key": key}
        if self._postgres:
            from sqlalchemy.dialects.postgresql import insert as pg_insert

            self.conn.execute(pg_insert(flow_keys).values(row).on_conflict_do_nothing())
            self.conn.execute(
                select(flow_keys.c.key)
                .where(flow_keys.c.workspace == workspace, flow_keys.c.key == key)
                .with_for_update()
            )
        else:  # SQLite: the unit of work's write lock serialises everyone
            from sqlalchemy.dialects.sqlite import insert as lite_insert

            self.conn.execute(lite_insert(flow_keys).values(row).on_conflict_do_nothing())
        self._locked.add((workspace, key))

    def _check(self, workspace: str, claim: FlowClaim, now: datetime) -> HeldBack | None:
        if claim.kind is ClaimKind.RATE:
            return self._check_rate(workspace, claim, now)
        self.conn.execute(
            delete(flow_slots).where(
                flow_slots.c.workspace == workspace,
                flow_slots.c.key == claim.key,
                ~_holder_lives(),
            )
        )
        held = self.conn.execute(
            select(func.count())
            .select_from(flow_slots)
            .where(flow_slots.c.workspace == workspace, flow_slots.c.key == claim.key)
        ).scalar_one()
        if held < claim.limit:
            return None
        return HeldBack(claim, None, f"waits for {claim.describe()}: {held} held")

    def _check_rate(self, workspace: str, claim: FlowClaim, now: datetime) -> HeldBack | None:
        period = timedelta(seconds=claim.period_seconds or 0)
        where = (flow_grants.c.workspace == workspace, flow_grants.c.key == claim.key)
        self.conn.execute(
            delete(flow_grants).where(*where, flow_grants.c.granted_at <= now - period)
        )
        count, oldest = self.conn.execute(
            select(func.count(), func.min(flow_grants.c.granted_at)).where(*where)
        ).one()
        if count < claim.limit:
            return None
        until = oldest + period
        return HeldBack(claim, until, f"waits for {claim.describe()} until {until.isoformat()}")

    def _holds(self, workspace: str, key: str, run_id: str) -> bool:
        return (
            self.conn.execute(
                select(flow_slots.c.id).where(
                    flow_slots.c.workspace == workspace,
                    flow_slots.c.key == key,
                    flow_slots.c.holder == run_id,
                )
            ).first()
            is not None
        )

    def _take(
        self, workspace: str, run_id: str, attempt_id: str, claim: FlowClaim, now: datetime
    ) -> None:
        if claim.kind is ClaimKind.RATE:
            self.conn.execute(
                insert(flow_grants).values(
                    workspace=workspace,
                    key=claim.key,
                    granted_at=now,
                    run_id=run_id,
                    attempt_id=attempt_id,
                )
            )
            return
        holder = run_id if claim.scope is ClaimScope.RUN else attempt_id
        self.conn.execute(
            insert(flow_slots).values(
                workspace=workspace,
                key=claim.key,
                holder=holder,
                scope=claim.scope.value,
                run_id=run_id,
                acquired_at=now,
            )
        )


def _holder_lives() -> Any:
    """A slot's holder is alive: its attempt queued or running, or its run not ended."""
    attempt_lives = exists().where(
        attempts.c.attempt_id == flow_slots.c.holder, attempts.c.status.in_(_LIVE_ATTEMPT)
    )
    run_lives = exists().where(runs.c.id == flow_slots.c.holder, runs.c.status.not_in(_ENDED_RUN))
    return or_(
        and_(flow_slots.c.scope == ClaimScope.TASK.value, attempt_lives),
        and_(flow_slots.c.scope == ClaimScope.RUN.value, run_lives),
    )


def held_columns(held: HeldBack, workspace: str, attempt_id: str, now: datetime) -> dict[str, Any]:
    """The outbox columns of a dispatch held back (relays skip it; people read why)."""
    return {
        "flow_workspace": workspace,
        "flow_key": held.claim.key,
        "flow_holder": attempt_id,
        "flow_until": held.until,
        "flow_since": now,
        "flow_wait": held.reason,
        "held_until": None,
    }


@dataclass(frozen=True)
class FlowWait:
    """A dispatch held back, as people see it: which attempt, why, since when."""

    attempt_id: str
    run_id: str
    reason: str
    since: datetime
    priority: int | None
    key: str = ""
    #: A rate limit's wait: when its window lets the next one go (None: a concurrency key).
    until: datetime | None = None
    #: A concurrency key's living holders (attempt or run ids; a few, for people to read).
    holders: tuple[str, ...] = ()


class FlowRepository(Repository):
    """Releases dispatches held back by flow control, and says what waits and why."""

    def release_held(self, now: datetime, *, limit: int = 200) -> int:
        """Let go every held dispatch whose claims now hold, highest priority first per key;
        returns how many were released to the outbox (a relay publishes them)."""
        waiting = self._conn.execute(
            select(outbox.c.flow_workspace, outbox.c.flow_key)
            .where(outbox.c.flow_key.is_not(None), outbox.c.sent_at.is_(None))
            .where(or_(outbox.c.flow_until.is_(None), outbox.c.flow_until <= now))
            .distinct()
        ).all()
        gate = FlowGate(self._conn)
        released = 0
        for workspace, key in waiting:
            released += self._release_key(gate, workspace, key, now, limit)
        return released

    def _release_key(
        self, gate: FlowGate, workspace: str, key: str, now: datetime, limit: int
    ) -> int:
        rows = self._conn.execute(
            self._claim(
                select(
                    outbox.c.id,
                    outbox.c.run_id,
                    outbox.c.payload,
                    outbox.c.flow_holder,
                    outbox.c.flow_since,
                )
                .where(outbox.c.flow_workspace == workspace, outbox.c.flow_key == key)
                .where(outbox.c.sent_at.is_(None))
                .where(or_(outbox.c.flow_until.is_(None), outbox.c.flow_until <= now))
                .order_by(outbox.c.priority.desc(), outbox.c.id)
                .limit(limit)
            )
        ).all()
        released = 0
        for row in rows:
            command = decode_command(row.payload)
            if not isinstance(command, cmd.DispatchTask) or not self._still_queued(row.flow_holder):
                self._conn.execute(delete(outbox).where(outbox.c.id == row.id))
                continue
            held = gate.admit(workspace, row.run_id, row.flow_holder, command.claims, now)
            if held is not None:
                self._conn.execute(
                    update(outbox)
                    .where(outbox.c.id == row.id)
                    .values(held_columns(held, workspace, row.flow_holder, row.flow_since))
                )
                if held.claim.key == key:
                    break  # this key is full: the rest of its queue waits too
                continue
            self._let_go(row.id, command.dispatch, now)
            released += 1
        return released

    def _still_queued(self, attempt_id: str | None) -> bool:
        if attempt_id is None:
            return False
        status = self._conn.execute(
            select(attempts.c.status).where(attempts.c.attempt_id == attempt_id)
        ).scalar_one_or_none()
        return status == AttemptStatus.QUEUED.value

    def _let_go(self, outbox_id: int, dispatch: TaskDispatch, now: datetime) -> None:
        """The row goes to the relay; the attempt's clock (its deadline and timeout timer,
        stopped while it was held) starts now."""
        self._conn.execute(
            update(outbox)
            .where(outbox.c.id == outbox_id)
            .values(
                flow_workspace=None,
                flow_key=None,
                flow_holder=None,
                flow_until=None,
                flow_since=None,
                flow_wait=None,
                held_until=None,
                created_at=now,
            )
        )
        timeout = dispatch.timeout_seconds
        deadline = None if timeout is None else now + timedelta(seconds=timeout)
        self._conn.execute(
            update(attempts)
            .where(attempts.c.attempt_id == dispatch.attempt_id)
            .values(dispatched_at=now, deadline=deadline)
        )
        ref = parse_attempt_id(dispatch.attempt_id)
        if ref is not None and deadline is not None:
            timer = unit_timer_id(
                TimerKind.TIMEOUT, ref.run_id, ref.execution, ref.position, ref.attempt
            )
            self._conn.execute(update(timers).where(timers.c.id == timer).values(fire_at=deadline))

    def has_held_dispatches(self) -> bool:
        """Whether any dispatch waits for flow control (cheap: a partial index)."""
        return (
            self._conn.execute(
                select(outbox.c.id)
                .where(outbox.c.flow_key.is_not(None), outbox.c.sent_at.is_(None))
                .limit(1)
            ).first()
            is not None
        )

    def flow_waits(self, run_ids: Sequence[str]) -> Mapping[str, FlowWait]:
        """The held dispatches of these runs, by attempt id (with a few living holders of
        each concurrency key they wait for)."""
        found: dict[str, FlowWait] = {}
        if not run_ids:
            return found
        rows = self._conn.execute(
            select(
                outbox.c.flow_holder,
                outbox.c.run_id,
                outbox.c.flow_wait,
                outbox.c.flow_since,
                outbox.c.priority,
                outbox.c.flow_workspace,
                outbox.c.flow_key,
                outbox.c.flow_until,
            ).where(
                outbox.c.run_id.in_(list(run_ids)),
                outbox.c.flow_key.is_not(None),
                outbox.c.sent_at.is_(None),
            )
        ).all()
        holders: dict[tuple[str, str], tuple[str, ...]] = {}
        for row in rows:
            if row.flow_holder is None:
                continue
            key = (row.flow_workspace, row.flow_key)
            if row.flow_until is None and key not in holders:
                holders[key] = self.slot_holders(*key)
            found[row.flow_holder] = FlowWait(
                row.flow_holder,
                row.run_id,
                row.flow_wait or "",
                row.flow_since,
                row.priority,
                key=row.flow_key,
                until=row.flow_until,
                holders=holders.get(key, ()),
            )
        return found

    def slot_holders(self, workspace: str, key: str, limit: int = 3) -> tuple[str, ...]:
        """Up to ``limit`` living holders of a concurrency key, longest held first."""
        rows = self._conn.execute(
            select(flow_slots.c.holder)
            .where(flow_slots.c.workspace == workspace, flow_slots.c.key == key, _holder_lives())
            .order_by(flow_slots.c.acquired_at, flow_slots.c.holder)
            .limit(limit)
        ).scalars()
        return tuple(rows)
