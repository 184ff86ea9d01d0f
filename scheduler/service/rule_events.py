"""Rules on outside events: an event that arrives starts the action of each rule it matches.

:class:`~.events.EventRouter` calls :meth:`RuleEvents.start_matching` where it starts the
runs of workflow event triggers (before it records the event, so sending the event again
after a crash repairs what was missed; a match is keyed by rule and event id, and its run
by an idempotency key, so nothing starts twice). A rule matches when it is enabled, in the
event's workspace, and the event's type and subject fit its trigger's ``type`` and
``parameters.subject`` (shell-style patterns, :mod:`treadle.common.patterns`, as event
triggers take them). Each match is one transaction (:mod:`.rule_launch`): the criteria,
the run, the match's record.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from treadle.common.patterns import event_matches
from treadle.common.rules import TimerKind
from treadle.scheduler.service.rule_launch import MatchOutcome, RuleLaunch, TriggerFire
from treadle.scheduler.store.rule_repo import RuleRow

__all__ = ["RuleEvents"]

_TIMERS = tuple(kind.value for kind in TimerKind)


def _matches(rule: RuleRow, event_type: str, subject: str | None) -> bool:
    pattern = rule.trigger_parameters.get("subject")
    return event_matches(
        event_type,
        subject,
        type_pattern=rule.trigger_type,
        subject_pattern=pattern if isinstance(pattern, str) else None,
    )


class RuleEvents:
    """Finds the rules an event matches and launches each."""

    def __init__(self, launch: RuleLaunch) -> None:
        self.launch = launch

    def start_matching(
        self, event: Mapping[str, Any], workspace: str
    ) -> tuple[list[str], dict[str, str]]:
        """Launch every rule of ``workspace`` that ``event`` (``{id, type, subject,
        data}``) matches: the runs started, and the rules that could not start one (by
        ``rule:<ref>``, with the reason). A rule whose criteria are false is neither."""
        store = self.launch.starter.runs.store
        with store.snapshot() as uow:
            rules = [
                rule
                for rule in uow.event_rules(workspace, _TIMERS)
                if _matches(rule, str(event["type"]), event.get("subject"))
            ]
        started: list[str] = []
        refused: dict[str, str] = {}
        data = event.get("data")
        fire = TriggerFire(
            key=f"event:{event['id']}",
            payload=data if isinstance(data, Mapping) else {"data": data},
            event=dict(event),
            event_id=str(event["id"]),
        )
        for rule in rules:
            with store.unit_of_work() as uow:
                match = self.launch.launch(uow, rule, fire)
            if match is None:
                continue
            if match.run_id is not None:
                started.append(match.run_id)
            elif match.outcome == MatchOutcome.FAILED_TO_START:
                refused[f"rule:{rule.ref}"] = match.reason or "could not start"
        return started, refused
