"""Keeping the stored rules in step with the packs' ``rules/`` folders.

Called where packs are registered (``treadle scheduler`` at start-up, the embedded
scheduler of ``treadle api`` on SQLite, ``POST /api/v1/packs/reload``), in the transaction
that registers them. Rules belong to the ``default`` workspace (packs are shared by the
installation; see ``docs/rules.md``). For each pack loaded:

* a rule that is new is stored; a timer rule also gets its schedule (``rule:<ref>``,
  ``source`` ``rule``), whose cursor starts now, so it does not fire for times before it
  existed: a one-shot whose ``fire_at`` is already past is *reported* (a problem, and the
  rule's ``note``), never fired;
* a rule whose content changed (its digest) is replaced, its schedule updated in place
  (fires kept; the new timing counts from now) and ``enabled`` set as the pack says;
* an unchanged rule is left alone (an operator's ``treadle rules disable`` sticks);
* a stored rule the pack no longer has is deleted with its schedule and matches.

Packs not loaded are left alone, as the registry of actions leaves them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Final

from treadle.common.access import DEFAULT_WORKSPACE
from treadle.common.errors import ConflictError, TreadleError
from treadle.common.rules import RuleSpec, TimerKind, TimerSchedule, iso_z, timer_schedule
from treadle.common.schedules import MissedPolicy, OverlapPolicy
from treadle.common.source import Path
from treadle.scheduler.service.schedules import ScheduleInput, ScheduleSource, row_for
from treadle.scheduler.store import UnitOfWork
from treadle.scheduler.store.rule_repo import RuleRow
from treadle.scheduler.store.schedule_repo import ScheduleRow

__all__ = ["RuleProblem", "RuleSyncReport", "schedule_name", "sync_rules"]

log = logging.getLogger("treadle.rules")

#: The workspace the packs' rules belong to.
RULES_WORKSPACE: Final = DEFAULT_WORKSPACE
#: The ``paused_reason`` of a disabled timer rule's schedule.
DISABLED: Final = "the rule is disabled"


def schedule_name(ref: str) -> str:
    """The name of a timer rule's schedule."""
    return f"rule:{ref}"


@dataclass(frozen=True)
class RuleProblem:
    """Something about a rule the operator should hear of, and where it was written."""

    rule: RuleSpec
    path: Path
    message: str


@dataclass
class RuleSyncReport:
    """What a sync did, by rule ref."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    problems: list[RuleProblem] = field(default_factory=list)


def sync_rules(
    uow: UnitOfWork,
    rules: Mapping[str, RuleSpec],
    packs: Collection[str],
    *,
    now: datetime,
) -> RuleSyncReport:
    """Make the stored rules of ``packs`` match ``rules`` (see the module docstring)."""
    report = RuleSyncReport()
    stored = {row.ref: row for row in uow.rules_of_packs(RULES_WORKSPACE, sorted(packs))}
    for ref, spec in sorted(rules.items()):
        if spec.pack not in packs:
            continue
        current = stored.get(ref)
        digest = spec.digest()
        if current is not None and current.digest == digest:
            continue
        try:
            timer = timer_schedule(spec.trigger)
        except TreadleError as exc:  # checked when loaded: only a changed Treadle gets here
            report.problems.append(RuleProblem(spec, ("trigger",), str(exc)))
            continue
        note = _past(spec, timer, now)
        if note is not None:
            report.problems.append(RuleProblem(spec, ("trigger", "parameters", "fire_at"), note))
        schedule_id = _schedule(uow, spec, timer, current, now, report)
        row = RuleRow(
            id=current.id if current else f"rul-{uuid.uuid4().hex[:16]}",
            workspace=RULES_WORKSPACE,
            ref=spec.ref,
            name=spec.name,
            pack=spec.pack,
            description=spec.description,
            enabled=spec.enabled,
            trigger_type=spec.trigger.type,
            trigger_parameters=dict(spec.trigger.parameters),
            action_ref=spec.action.ref,
            action_parameters=dict(spec.action.parameters),
            criteria=tuple(spec.criteria),
            source_file=str(spec.source.loc(())),
            digest=digest,
            schedule_id=schedule_id,
            note=note,
            created_at=current.created_at if current else now,
            updated_at=now,
        )
        if current is None:
            uow.insert_rule(row)
            report.added.append(ref)
        else:
            uow.replace_rule(row)
            report.updated.append(ref)
    for ref, row in sorted(stored.items()):
        if ref not in rules or rules[ref].pack != row.pack:
            if row.schedule_id is not None:
                uow.delete_schedule(row.schedule_id)
            uow.delete_rule(row.id)
            report.removed.append(ref)
    for problem in report.problems:
        log.warning("rule %s (%s): %s", problem.rule.ref, problem.rule.source.loc(problem.path),
                    problem.message)  # fmt: skip
    return report


def _past(spec: RuleSpec, timer: TimerSchedule | None, now: datetime) -> str | None:
    """Why a one-shot will not fire: its time was past when it was loaded."""
    if timer is None or timer.fire_at is None or timer.fire_at > now:
        return None
    return (
        f"fire_at {iso_z(timer.fire_at)} was already past when the rule was loaded "
        f"({iso_z(now)}): it is not fired"
    )


def _schedule(  # noqa: PLR0917 (one call site; each argument has its own role)
    uow: UnitOfWork,
    spec: RuleSpec,
    timer: TimerSchedule | None,
    current: RuleRow | None,
    now: datetime,
    report: RuleSyncReport,
) -> str | None:
    """The id of the rule's schedule after the sync (created, updated or deleted)."""
    existing = current.schedule_id if current is not None else None
    if timer is None:
        if existing is not None:
            uow.delete_schedule(existing)
        return None
    given = _input(spec, timer)
    fresh = row_for(
        given,
        workspace=RULES_WORKSPACE,
        created_by=f"rule:{spec.ref}",
        now=now,
        source=ScheduleSource.RULE,
    )
    if not fresh.enabled:
        fresh = replace(fresh, paused_reason=DISABLED)
    old = uow.schedule_by_id(existing) if existing is not None else None
    if old is not None:
        _update(uow, old, fresh, now)
        return old.id
    try:
        uow.insert_schedule(fresh)
    except ConflictError:
        message = (
            f"its schedule {given.name!r} is a name workspace {RULES_WORKSPACE!r} uses "
            "already for another schedule: the timer does not fire"
        )
        report.problems.append(RuleProblem(spec, ("trigger",), message))
        return None
    return fresh.id


def _input(spec: RuleSpec, timer: TimerSchedule) -> ScheduleInput:
    """A timer as a schedule: every fire starts the action, whatever is still running
    (Attune's timers do); after downtime a one-shot fires late, a periodic timer once."""
    one_shot = timer.kind is TimerKind.DATETIME
    return ScheduleInput(
        name=schedule_name(spec.ref),
        workflow=spec.action.ref,
        cron=timer.cron,
        interval=timer.step,
        timezone=timer.timezone,
        start=timer.start,
        end=timer.end,
        parameters=dict(spec.action.parameters),
        overlap=OverlapPolicy.ALLOW_ALL,
        catchup_window=timedelta(days=1),
        missed=MissedPolicy.ALL if one_shot else MissedPolicy.LAST,
        enabled=spec.enabled,
    )


_TIMING = (
    "workflow", "cron", "interval_seconds", "timezone", "start_at", "end_at", "parameters",
    "missed",
)  # fmt: skip


def _update(uow: UnitOfWork, old: ScheduleRow, fresh: ScheduleRow, now: datetime) -> None:
    values: dict[str, object] = {name: getattr(fresh, name) for name in _TIMING}
    if any(getattr(old, name) != value for name, value in values.items()):
        values["cursor"] = max(old.cursor, now)  # the new timing counts from now
    values.update(enabled=fresh.enabled, paused_reason=fresh.paused_reason, updated_at=now)
    uow.update_schedule(old.id, **values)
