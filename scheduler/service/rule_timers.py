"""A timer rule's schedule firing: the payload Attune's timers carry, then the rule's action.

A timer rule is stored as a schedule (``source`` ``rule``, :mod:`.rule_sync`), so beat
fires it like any schedule: :class:`~.schedule_firing.ScheduleFiring` records the fire
once and, where it would start the schedule's workflow, hands the fire to
:meth:`RuleFires.start` instead. That builds the trigger's payload
(:func:`~treadle.common.rules.timer_payload`: ``fired_at``, ``scheduled_at``,
``next_fire_at``, ``execution_count`` ...) and launches the rule (:mod:`.rule_launch`) in
the fire's transaction; the fire's status says what happened (``started``,
``skipped_criteria``, ``failed_to_start``) and the match is recorded with the rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from treadle.common.errors import ParameterError
from treadle.common.rules import RuleTrigger, iso_z, timer_payload, timer_schedule
from treadle.scheduler.core.schedule_plan import FireStatus
from treadle.scheduler.service.rule_launch import MatchOutcome, RuleLaunch, TriggerFire
from treadle.scheduler.service.schedules import rule_of
from treadle.scheduler.store import UnitOfWork
from treadle.scheduler.store.schedule_repo import ScheduleRow

__all__ = ["FireStart", "RuleFires"]


@dataclass(frozen=True)
class FireStart:
    """What starting a fire did: the run, or the fire's status and why."""

    run_id: str | None
    status: FireStatus
    reason: str | None = None


_STATUS = {
    MatchOutcome.STARTED: FireStatus.STARTED,
    MatchOutcome.CRITERIA_FALSE: FireStatus.SKIPPED_CRITERIA,
    MatchOutcome.FAILED_TO_START: FireStatus.FAILED_TO_START,
}


class RuleFires:
    """Starts the action of the timer rule behind a schedule."""

    def __init__(self, launch: RuleLaunch) -> None:
        self.launch = launch

    def start(self, uow: UnitOfWork, row: ScheduleRow, nominal: datetime) -> FireStart:
        """Launch the rule of schedule ``row`` for its fire at ``nominal``."""
        rule = uow.rule_by_schedule(row.id)
        if rule is None:
            return FireStart(None, FireStatus.FAILED_TO_START, "the schedule's rule is gone")
        trigger = RuleTrigger(type=rule.trigger_type, parameters=dict(rule.trigger_parameters))
        try:
            timer = timer_schedule(trigger)
        except ParameterError as exc:
            return FireStart(None, FireStatus.FAILED_TO_START, str(exc))
        if timer is None:
            return FireStart(None, FireStatus.FAILED_TO_START, "the rule is not a timer")
        fired = self.launch.clock()
        count = sum(uow.match_counts(rule.id).values()) + 1
        payload = timer_payload(
            timer,
            scheduled=nominal,
            fired=fired,
            next_fire=rule_of(row).next_after(nominal),
            count=count,
        )
        key = f"fire:{iso_z(nominal)}"
        fire = TriggerFire(
            key=key,
            payload=payload,
            event={"id": key, "type": rule.trigger_type, "subject": None, "data": payload},
            keep_payload=True,
            schedule={
                "name": row.name,
                "fire_time": iso_z(nominal),
                "rule": rule.ref,
                "trigger": payload,
            },
        )
        match = self.launch.launch(uow, rule, fire)
        if match is None:
            return FireStart(None, FireStatus.FAILED_TO_START, "this fire matched the rule before")
        return FireStart(match.run_id, _STATUS[MatchOutcome(match.outcome)], match.reason)
