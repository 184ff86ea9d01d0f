"""What happens to each fire of a schedule that came due: start, buffer or skip, and why.

PURE, like the rest of the core: the beat service (``scheduler/service/schedule_firing``)
gives the rule, the schedule's cursor (the last nominal fire it accounted for), ``now``
and how many of the schedule's runs are still going; this module answers with one
:class:`Fire` per due fire, in nominal order. The service records each answer, starts the
runs, and moves the cursor past every fire it recorded, so a fire is decided once.

The rules, in order (``docs/schedules.md``):

1. while an emergency stop holds the schedule's workspace, every due fire is skipped
   (``skipped_emergency_stop``; docs/governance.md#emergency-stop), and a paused schedule
   skips every due fire (``skipped_paused``);
2. a fire due longer ago than ``catchup_window`` is skipped (``skipped_catchup_window``);
3. fires missed while beat was away (due longer ago than ``late_after``) follow the missed
   policy: ``all`` keeps them, ``last`` keeps only the newest of them, ``none`` keeps
   none (``skipped_missed``); fires that are not late are always kept;
4. what is kept meets the overlap policy (:func:`overlap_action`) given the runs still
   going and the fires already buffered.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from treadle.common.schedules import MissedPolicy, OverlapPolicy, ScheduleRule, jitter_delay

__all__ = [
    "DueFire",
    "Fire",
    "FireAction",
    "FireStatus",
    "Policies",
    "due_fires",
    "overlap_action",
    "plan_due",
]


class FireStatus(StrEnum):
    """The recorded outcome of one fire (``buffered`` later becomes ``started`` or
    ``failed_to_start``)."""

    STARTED = "started"
    BUFFERED = "buffered"
    SKIPPED_OVERLAP = "skipped_overlap"
    SKIPPED_CATCHUP_WINDOW = "skipped_catchup_window"
    SKIPPED_MISSED = "skipped_missed"
    SKIPPED_PAUSED = "skipped_paused"
    #: An emergency stop held the schedule's workspace: no run.
    SKIPPED_EMERGENCY_STOP = "skipped_emergency_stop"
    #: Skipped by the overlap policy while the schedule's run is stopped by its budget.
    SKIPPED_BUDGET = "skipped_budget"
    #: A rule's timer fired and the rule's criteria were false: no run (docs/rules.md).
    SKIPPED_CRITERIA = "skipped_criteria"
    FAILED_TO_START = "failed_to_start"

    @property
    def is_skip(self) -> bool:
        return self.value.startswith("skipped_")


class FireAction(StrEnum):
    """What the service does for a fire the plan keeps."""

    START = "start"
    START_CANCELLING = "start_cancelling"  # cancel the schedule's running runs first
    BUFFER = "buffer"
    SKIP = "skip"  # an overlap skip


@dataclass(frozen=True)
class Policies:
    """How a schedule treats overlapping runs and fires it missed."""

    overlap: OverlapPolicy = OverlapPolicy.SKIP
    catchup_window: timedelta = timedelta(days=1)
    missed: MissedPolicy = MissedPolicy.ALL
    #: A fire due longer ago than this when beat looks at it was missed (beat was away).
    late_after: timedelta = timedelta(seconds=60)


@dataclass(frozen=True)
class DueFire:
    """One fire: its nominal instant (the key) and the instant it is due (jitter added)."""

    nominal: datetime
    due_at: datetime


@dataclass(frozen=True)
class Fire:
    """The plan for one due fire: a skip (``status``) or an action for the overlap policy."""

    fire: DueFire
    status: FireStatus | None = None  # a skip decided before the overlap policy
    action: FireAction | None = None
    reason: str = ""


def due_fires(
    rule: ScheduleRule, key: str, *, after: datetime, now: datetime, limit: int
) -> tuple[list[DueFire], DueFire | None]:
    """Up to ``limit`` fires after ``after`` that are due at ``now``, in nominal order, and
    the next due fire beyond them (``None`` when there is none). A fire not yet due ends
    the list: later nominal fires wait for it, whatever their jitter."""
    found: list[DueFire] = []
    for nominal in rule.fires_between(after, now):  # a fire after ``now`` is not due
        fire = DueFire(nominal, nominal + jitter_delay(key, nominal, rule.jitter))
        if fire.due_at > now:
            return found, None
        if len(found) == limit:
            return found, fire
        found.append(fire)
    return found, None


def overlap_action(policy: OverlapPolicy, *, active: int, buffered: int) -> FireAction:
    """The action for a kept fire while ``active`` runs of the schedule are going and
    ``buffered`` fires wait to start."""
    busy = active > 0 or buffered > 0
    if policy is OverlapPolicy.ALLOW_ALL or not busy:
        return FireAction.START
    if policy is OverlapPolicy.CANCEL_OTHER:
        return FireAction.START_CANCELLING
    if policy is OverlapPolicy.BUFFER_ALL:
        return FireAction.BUFFER
    if policy is OverlapPolicy.BUFFER_ONE and buffered == 0:
        return FireAction.BUFFER
    return FireAction.SKIP


def plan_due(
    fires: list[DueFire],
    policies: Policies,
    *,
    now: datetime,
    beyond: DueFire | None = None,
    paused: bool = False,
    active: int = 0,
    buffered: int = 0,
    stopped: str | None = None,
) -> list[Fire]:
    """One :class:`Fire` per due fire, in order (see the module docstring).

    ``beyond``: the next due fire after this batch, if any. ``active`` and ``buffered``
    count the schedule's runs still going and fires waiting; the plan assumes its own
    starts and buffers succeed (the service plans again after a start that fails).
    ``stopped``: the emergency stop that holds the schedule's workspace, described.
    """
    if stopped is not None:
        return [Fire(f, FireStatus.SKIPPED_EMERGENCY_STOP, reason=stopped) for f in fires]
    if paused:
        return [Fire(f, FireStatus.SKIPPED_PAUSED, reason="the schedule is paused") for f in fires]
    window = policies.catchup_window
    in_window = {i for i, f in enumerate(fires) if now - f.due_at <= window}
    kept = _kept(fires, in_window, policies, now=now, beyond=beyond)
    newest = max(kept) if kept else -1
    cancel_other = policies.overlap is OverlapPolicy.CANCEL_OTHER
    result: list[Fire] = []
    for index, fire in enumerate(fires):
        if index not in in_window:
            reason = (f"due {_age(now - fire.due_at)} ago, beyond the catch-up window "
                      f"({_age(window)})")  # fmt: skip
            result.append(Fire(fire, FireStatus.SKIPPED_CATCHUP_WINDOW, reason=reason))
        elif index not in kept:
            reason = f"missed while beat was away (missed policy {policies.missed.value})"
            result.append(Fire(fire, FireStatus.SKIPPED_MISSED, reason=reason))
        elif cancel_other and (index != newest or beyond is not None):
            reason = "superseded by a newer due fire (overlap policy cancel_other)"
            result.append(Fire(fire, action=FireAction.SKIP, reason=reason))
        else:
            action = overlap_action(policies.overlap, active=active, buffered=buffered)
            if action is FireAction.START:
                active += 1
            elif action is FireAction.START_CANCELLING:
                active = 1
            elif action is FireAction.BUFFER:
                buffered += 1
            reason = _overlap_reason(policies.overlap) if action is FireAction.SKIP else ""
            result.append(Fire(fire, action=action, reason=reason))
    return result


def _kept(
    fires: list[DueFire],
    in_window: set[int],
    policies: Policies,
    *,
    now: datetime,
    beyond: DueFire | None,
) -> set[int]:
    """The indices of the fires in the window that the missed policy keeps: every fire
    that is not late, and of the late (missed) ones all, the newest, or none."""
    late = {i for i in in_window if now - fires[i].due_at > policies.late_after}
    kept = in_window - late
    if policies.missed is MissedPolicy.ALL:
        return kept | late
    if policies.missed is MissedPolicy.LAST and late:
        beyond_late = beyond is not None and now - beyond.due_at > policies.late_after
        if not beyond_late:
            kept.add(max(late))
    return kept


def _overlap_reason(policy: OverlapPolicy) -> str:
    if policy is OverlapPolicy.BUFFER_ONE:
        return "a run is still going and one fire is buffered already (overlap policy buffer_one)"
    return "a run of the schedule is still going (overlap policy skip)"


def _age(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 86_400:
        return f"{seconds // 86_400}d{(seconds % 86_400) // 3600}h"
    if seconds >= 3600:
        return f"{seconds // 3600}h{(seconds % 3600) // 60}m"
    return f"{seconds}s"
