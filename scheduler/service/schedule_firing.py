"""Firing a schedule: record each due fire once and start its run, in one transaction.

``treadle beat`` calls :meth:`ScheduleFiring.fire_due` when a schedule's next fire is due,
and :meth:`ScheduleFiring.follow_up` for schedules whose runs are still going or whose
fires wait in a buffer. Each transaction locks the schedule's row (``SKIP LOCKED`` on
PostgreSQL: a second beat leaves it to the first), notes which of its runs ended
(pausing the schedule after a failed one when ``pause_on_failure``), asks the pure plan
(:mod:`treadle.scheduler.core.schedule_plan`) what each due fire does, records the fires
(key: schedule and nominal instant, so a fire is never recorded twice) and starts at most
one run, then moves the schedule's cursor past what it recorded. Runs start through
:class:`~treadle.scheduler.service.starting.RunStarter` exactly as event triggers start
them: the latest published version of the workflow, the schedule's parameters, in the
schedule's workspace, with ``system.schedule`` = ``{name, fire_time}``.

While an emergency stop holds the schedule's workspace, due fires (and fires asked for
now) are recorded as ``skipped_emergency_stop``, and buffered fires wait for the stop to
be lifted (docs/governance.md#emergency-stop).

A start that is refused (no such workflow, bad parameters ...) is recorded as
``failed_to_start`` with the reason; the run was never created. A timer rule's schedule
(``source`` ``rule``) starts the rule's action instead (:mod:`.rule_timers`), whose
criteria may leave the fire ``skipped_criteria``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from itertools import islice
from typing import TYPE_CHECKING

from treadle.common.emergency_stop import holding
from treadle.common.errors import LimitExceeded, ParameterError, TreadleError
from treadle.common.schedules import OverlapPolicy, instant_in_range
from treadle.common.statuses import RunStatus
from treadle.scheduler.core.namespaces import iso
from treadle.scheduler.core.schedule_plan import (
    DueFire,
    FireAction,
    FireStatus,
    due_fires,
    overlap_action,
    plan_due,
)
from treadle.scheduler.service.budget_fires import budget_hold
from treadle.scheduler.service.controls import Control, apply_control_in
from treadle.scheduler.service.rule_launch import RuleLaunch
from treadle.scheduler.service.rule_timers import FireStart, RuleFires
from treadle.scheduler.service.schedules import ScheduleSource, policies_of, rule_of
from treadle.scheduler.service.starting import RunOptions, RunStarter
from treadle.scheduler.store import UnitOfWork
from treadle.scheduler.store.schedule_repo import FireRow, ScheduleRow

if TYPE_CHECKING:
    from prometheus_client import Counter

__all__ = ["FireKind", "ScheduleFiring"]

log = logging.getLogger("treadle.beat")

#: Run statuses after which ``pause_on_failure`` pauses the schedule.
_FAILED = frozenset({RunStatus.FAILED.value, RunStatus.TIMED_OUT.value})
#: The most fires one backfill records.
MAX_BACKFILL = 1000
_TICK = timedelta(microseconds=1)
#: The ``run_status`` noted for a started run that no longer exists (purged).
GONE = "gone"


class FireKind(StrEnum):
    """Why a fire exists: the schedule came due, someone asked now, or a backfill."""

    SCHEDULED = "scheduled"
    MANUAL = "manual"
    BACKFILL = "backfill"


@dataclass(frozen=True)
class _Open:
    """A schedule's fires in play: runs still going, fires waiting in the buffer."""

    active: list[FireRow]
    buffered: list[FireRow]


class ScheduleFiring:
    """Records due fires and starts their runs (see the module docstring)."""

    def __init__(
        self,
        starter: RunStarter,
        *,
        clock: Callable[[], datetime],
        late_after: timedelta = timedelta(seconds=60),
        batch_size: int = 500,
        fires: Counter | None = None,
    ) -> None:
        self.starter = starter
        #: ``treadle_schedule_fires_total`` (beat's): counted by outcome once committed.
        self._fires = fires
        self.store = starter.runs.store
        self.clock = clock
        self.late_after = late_after
        self.batch_size = batch_size
        self.rules = RuleFires(RuleLaunch(starter, clock=clock))

    # -- beat's two calls --------------------------------------------------------------------

    def fire_due(self, schedule_id: str, *, max_steps: int = 100) -> bool:
        """Account for the fires of the schedule due now, in at most ``max_steps``
        transactions (one run started in each); whether fires may be left (a long backlog:
        beat comes back to it after its other due schedules)."""
        for _ in range(max_steps):
            with self.store.unit_of_work() as uow:
                more = self._fire_step(uow, schedule_id, self.clock())
            if not more:
                return False
        return True

    def follow_up(self, schedule_id: str) -> None:
        """Note ended runs (maybe pausing the schedule) and start a buffered fire when
        nothing of the schedule is running any more."""
        with self.store.unit_of_work() as uow:
            row = uow.claim_schedule(schedule_id)
            if row is None:
                return
            now = self.clock()
            row, open_fires = self._settle(uow, row)
            if open_fires.active or not open_fires.buffered or not row.enabled:
                return
            if _stopped(uow, row.workspace) is not None:
                return  # the buffered fire waits for the emergency stop to be lifted
            fire = open_fires.buffered[0]
            started = self._start(uow, row, fire.nominal_at)
            self._count(uow, [started.status])
            uow.update_fire(
                row.id,
                fire.nominal_at,
                status=started.status.value,
                run_id=started.run_id,
                reason=started.reason or fire.reason,
                started_at=now if started.run_id else None,
            )

    # -- asked by people ------------------------------------------------------------------------

    def fire_now(
        self,
        uow: UnitOfWork,
        row: ScheduleRow,
        nominal: datetime,
        *,
        kind: FireKind,
        overlap: OverlapPolicy | None = None,
    ) -> FireRow:
        """Fire ``row`` at ``nominal`` now (trigger-now, backfill) under ``overlap`` (the
        schedule's own by default); a nominal instant recorded already is a no-op that
        returns the fire recorded before."""
        now = self.clock()
        row, open_fires = self._settle(uow, row)
        policy = overlap or OverlapPolicy(row.overlap)
        action = overlap_action(
            policy, active=len(open_fires.active), buffered=len(open_fires.buffered)
        )
        fire = DueFire(nominal, nominal)
        stopped = _stopped(uow, row.workspace)
        if stopped is not None:
            status = FireStatus.SKIPPED_EMERGENCY_STOP
            skipped = _fire_row(row, fire, kind, status, now=now, reason=stopped)
            recorded = skipped if uow.record_fire(skipped) else None
        else:
            recorded = self._record(
                uow, row, fire, kind=kind, action=action, now=now, open_fires=open_fires
            )
        if recorded is None:
            existing = uow.fire(row.id, nominal)
            assert existing is not None  # recorded before: that is why this one was not
            return existing
        return recorded

    def backfill(
        self,
        uow: UnitOfWork,
        row: ScheduleRow,
        start: datetime,
        end: datetime,
        *,
        overlap: OverlapPolicy = OverlapPolicy.ALLOW_ALL,
    ) -> list[FireRow]:
        """Fire every nominal instant of ``row`` in ``[start, end]`` now, in order, under
        ``overlap`` (default: start them all); instants recorded already stay as they were
        and are returned as recorded. LimitExceeded beyond ``MAX_BACKFILL`` fires."""
        problems = [
            f"'{name}' needs a UTC offset and a year from 1970 to 9000"
            for name, value in (("from", start), ("to", end))
            if not instant_in_range(value)
        ]
        if not problems and end < start:
            problems.append("the backfill's end is before its start")
        if problems:
            raise ParameterError(problems, subject="backfill")
        nominals = list(islice(rule_of(row).fires_between(start - _TICK, end), MAX_BACKFILL + 1))
        if len(nominals) > MAX_BACKFILL:
            raise LimitExceeded(
                f"a backfill fires at most {MAX_BACKFILL} times; split {start} to {end}"
            )
        return [
            self.fire_now(uow, row, nominal, kind=FireKind.BACKFILL, overlap=overlap)
            for nominal in nominals
        ]

    # -- one transaction -------------------------------------------------------------------------

    def _fire_step(self, uow: UnitOfWork, schedule_id: str, now: datetime) -> bool:
        """Plan and record one batch of due fires, starting at most one run; whether more
        fires may be due."""
        row = uow.claim_schedule(schedule_id)
        if row is None:
            return False
        row, open_fires = self._settle(uow, row)
        fires, beyond = due_fires(
            rule_of(row), row.id, after=row.cursor, now=now, limit=self.batch_size
        )
        if not fires:
            return False
        plan = plan_due(
            fires,
            policies_of(row, late_after=self.late_after),
            now=now,
            beyond=beyond,
            paused=not row.enabled,
            active=len(open_fires.active),
            buffered=len(open_fires.buffered),
            stopped=_stopped(uow, row.workspace),
        )
        skipped: list[FireRow] = []
        for planned in plan:
            fire = planned.fire
            if planned.status is not None or planned.action is FireAction.SKIP:
                status = planned.status or FireStatus.SKIPPED_OVERLAP
                reason = planned.reason
                held = None if planned.status else budget_hold(uow, _runs(open_fires))
                if held is not None:  # the run going is stopped by its budget
                    status, reason = FireStatus.SKIPPED_BUDGET, held
                skipped.append(
                    _fire_row(row, fire, FireKind.SCHEDULED, status, now=now, reason=reason)
                )
                continue
            assert planned.action is not None
            uow.record_fires(skipped)
            self._count(uow, (s.status for s in skipped))
            recorded = self._record(
                uow,
                row,
                fire,
                kind=FireKind.SCHEDULED,
                action=planned.action,
                now=now,
                open_fires=open_fires,
            )
            self._count(uow, [recorded.status] if recorded is not None else [])
            uow.move_schedule_cursor(row.id, fire.nominal)
            if planned.action is not FireAction.BUFFER:
                return True  # one run per transaction; plan the rest afresh
            skipped = []  # a buffered fire: the plan counted it, go on
        uow.record_fires(skipped)
        self._count(uow, (s.status for s in skipped))
        uow.move_schedule_cursor(row.id, fires[-1].nominal)
        return beyond is not None

    def _count(self, uow: UnitOfWork, outcomes: Iterable[str]) -> None:
        """Count fires by outcome (a fire status) once ``uow`` commits."""
        fires = self._fires
        if fires is None:
            return
        counted = [str(outcome) for outcome in outcomes]
        if not counted:
            return

        def count() -> None:
            for outcome in counted:
                fires.labels(outcome).inc()

        uow.after_commit(count)

    def _record(
        self,
        uow: UnitOfWork,
        row: ScheduleRow,
        fire: DueFire,
        *,
        kind: FireKind,
        action: FireAction,
        now: datetime,
        open_fires: _Open,
    ) -> FireRow | None:
        """Record one fire the overlap policy decided, starting its run if it says so;
        ``None`` when the fire was recorded before (by another beat, or a backfill)."""
        if action is FireAction.SKIP:
            reason = "a run of the schedule is still going (overlap policy)"
            status = FireStatus.SKIPPED_OVERLAP
            held = budget_hold(uow, _runs(open_fires))
            if held is not None:  # the run going is stopped by its budget
                status, reason = FireStatus.SKIPPED_BUDGET, held
            skipped = _fire_row(row, fire, kind, status, now=now, reason=reason)
            return skipped if uow.record_fire(skipped) else None
        if action is FireAction.BUFFER:
            waiting = "waiting for the schedule's running run to end"
            buffered = _fire_row(row, fire, kind, FireStatus.BUFFERED, now=now, reason=waiting)
            return buffered if uow.record_fire(buffered) else None
        claimed = _fire_row(row, fire, kind, FireStatus.STARTED, now=now)
        if not uow.record_fire(claimed):
            return None
        if action is FireAction.START_CANCELLING:
            self._cancel(uow, row, open_fires.active)
        started = self._start(uow, row, fire.nominal)
        run_id, problem = started.run_id, started.reason
        if run_id is None:
            failed = _fire_row(row, fire, kind, started.status, now=now, reason=problem)
            uow.update_fire(row.id, fire.nominal, status=failed.status, reason=problem)
            return failed
        uow.update_fire(row.id, fire.nominal, run_id=run_id, started_at=now)
        log.info("schedule %s fired (%s): started run %s", row.name, fire.nominal, run_id)
        return _fire_row(row, fire, kind, FireStatus.STARTED, now=now, run_id=run_id, started=now)

    def _start(self, uow: UnitOfWork, row: ScheduleRow, nominal: datetime) -> FireStart:
        """Start the schedule's run in ``uow`` (a timer rule's action for a rule's
        schedule): the run, or the fire's status and why not."""
        if row.source == ScheduleSource.RULE:
            return self.rules.start(uow, row, nominal)
        options = RunOptions(
            identity={"login": row.created_by, "via": "schedule", "schedule": row.name},
            workspace=row.workspace,
            schedule={"name": row.name, "fire_time": iso(nominal)},
        )
        try:
            with uow.connection.begin_nested():  # a refused start leaves nothing behind
                pinned = self.starter.definitions.pinned(
                    row.workflow, None, uow, workspace=row.workspace
                )
                started = self.starter.start_pinned_in(uow, pinned, row.parameters, options)
        except TreadleError as exc:
            log.warning("schedule %s could not start %s: %s", row.name, row.workflow, exc)
            return FireStart(None, FireStatus.FAILED_TO_START, str(exc) or type(exc).__name__)
        return FireStart(started.run_id, FireStatus.STARTED)

    def _cancel(self, uow: UnitOfWork, row: ScheduleRow, active: list[FireRow]) -> None:
        for fire in active:
            if fire.run_id is None:
                continue
            try:
                with uow.connection.begin_nested():
                    apply_control_in(
                        uow,
                        self.starter.runs,
                        fire.run_id,
                        Control.CANCEL,
                        reason=f"a newer fire of schedule {row.name} (overlap policy cancel_other)",
                        by=f"schedule:{row.name}",
                    )
            except TreadleError as exc:  # it ended meanwhile
                log.info("schedule %s: run %s not canceled: %s", row.name, fire.run_id, exc)

    def _settle(self, uow: UnitOfWork, row: ScheduleRow) -> tuple[ScheduleRow, _Open]:
        """Note the end of the schedule's runs that ended; pause it after a failed one
        when it says so. The (maybe paused) row and the fires still in play."""
        active: list[FireRow] = []
        buffered: list[FireRow] = []
        for fire, status in uow.open_fires(row.id):
            if fire.status == FireStatus.BUFFERED:
                buffered.append(fire)
                continue
            if status is not None and not RunStatus(status).is_terminal:
                active.append(fire)
                continue
            ended = status or GONE
            uow.update_fire(row.id, fire.nominal_at, run_status=ended)
            if ended in _FAILED and row.pause_on_failure and row.enabled:
                why = f"paused after run {fire.run_id} ended {ended} (pause_on_failure)"
                uow.update_schedule(row.id, enabled=False, paused_reason=why,
                                    updated_at=self.clock())  # fmt: skip
                log.warning("schedule %s %s", row.name, why)
                row = uow.schedule_by_id(row.id) or row
        return row, _Open(active, buffered)


def _runs(open_fires: _Open) -> list[str | None]:
    """The runs of the schedule still going."""
    return [fire.run_id for fire in open_fires.active]


def _stopped(uow: UnitOfWork, workspace: str) -> str | None:
    """The emergency stop holding ``workspace``, described (None: none holds)."""
    stop = holding(uow.emergency_stops(), workspace)
    return None if stop is None else stop.describe()


def _fire_row(
    row: ScheduleRow,
    fire: DueFire,
    kind: FireKind,
    status: FireStatus,
    *,
    now: datetime,
    reason: str | None = None,
    run_id: str | None = None,
    started: datetime | None = None,
) -> FireRow:
    return FireRow(
        schedule_id=row.id,
        nominal_at=fire.nominal,
        due_at=fire.due_at,
        kind=kind.value,
        status=status.value,
        reason=reason or None,
        run_id=run_id,
        run_status=None,
        recorded_at=now,
        started_at=started,
    )
