"""Managing schedules: create, pause, resume, delete, show; the one place input is checked.

``treadle schedules`` (CLI), ``/api/v1/schedules`` (API) and workflow triggers
(:mod:`.schedule_sync`) all describe a schedule as a :class:`ScheduleInput` and store it
through :func:`create`, so every way in checks the same things and gives the same errors
(:class:`~treadle.common.schedules.ScheduleError`, a ParameterError: 422 in the API).
What ``treadle beat`` does with a stored schedule is :mod:`.schedule_firing`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Final, TypeVar

from treadle.common.errors import ConflictError, NotFound
from treadle.common.schedules import (
    MAX_SPAN,
    MissedPolicy,
    OverlapPolicy,
    ScheduleError,
    ScheduleRule,
)
from treadle.scheduler.core.schedule_plan import Policies
from treadle.scheduler.store import UnitOfWork
from treadle.scheduler.store.schedule_repo import FireRow, ScheduleRow

__all__ = [
    "DEFAULT_CATCHUP_WINDOW",
    "ScheduleInput",
    "ScheduleSource",
    "create",
    "find",
    "pause",
    "policies_of",
    "remove",
    "resume",
    "rule_of",
    "shown",
    "shown_fire",
]

#: Temporal keeps a year; a day is kinder to a cluster that was down over a weekend
#: with per-minute schedules. Set ``catchup_window`` per schedule to change it.
DEFAULT_CATCHUP_WINDOW: Final = timedelta(days=1)
E = TypeVar("E", bound=StrEnum)
NAME_PATTERN: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$")


class ScheduleSource(StrEnum):
    """Who made a schedule: the CLI or the API, a workflow's triggers, or a timer rule."""

    API = "api"
    WORKFLOW = "workflow"
    RULE = "rule"


@dataclass(frozen=True)
class ScheduleInput:
    """A schedule as given, before checking (from the CLI, the API or a workflow trigger)."""

    name: str
    workflow: str
    cron: str | None = None
    interval: timedelta | None = None
    timezone: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    jitter: timedelta | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    overlap: OverlapPolicy | str = OverlapPolicy.SKIP
    catchup_window: timedelta | None = None
    missed: MissedPolicy | str = MissedPolicy.ALL
    pause_on_failure: bool = False
    enabled: bool = True

    def checked(self) -> tuple[ScheduleRule, OverlapPolicy, MissedPolicy]:
        """The rule and policies; ScheduleError naming every problem."""
        problems: list[str] = []
        if not NAME_PATTERN.match(self.name or ""):
            problems.append(
                f"name {self.name!r}: letters, digits, '.', '_', ':', '-' (at most 200), "
                "starting with a letter or digit"
            )
        if not self.workflow or not self.workflow.strip():
            problems.append("a schedule needs the 'workflow' it starts")
        overlap = _choice(OverlapPolicy, self.overlap, "overlap", problems)
        missed = _choice(MissedPolicy, self.missed, "missed", problems)
        if self.catchup_window is not None and not (
            timedelta(seconds=1) <= self.catchup_window <= MAX_SPAN
        ):
            problems.append(f"'catchup_window' must be 1 second to {MAX_SPAN.days} days")
        rule: ScheduleRule | None = None
        try:
            rule = ScheduleRule.checked(
                cron=self.cron,
                interval=self.interval,
                timezone=self.timezone,
                start=self.start,
                end=self.end,
                jitter=self.jitter,
            )
        except ScheduleError as exc:
            problems.extend(exc.problems)
        if problems or rule is None or overlap is None or missed is None:
            raise ScheduleError(problems, subject=f"schedule {self.name!r}")
        return rule, overlap, missed


def _choice(kind: type[E], value: object, what: str, problems: list[str]) -> E | None:
    try:
        return kind(str(value))
    except ValueError:
        allowed = " | ".join(member.value for member in kind)
        problems.append(f"'{what}' is {value!r}; use {allowed}")
        return None


def new_schedule_id() -> str:
    return f"sch-{uuid.uuid4().hex[:16]}"


def row_for(
    given: ScheduleInput,
    *,
    workspace: str,
    created_by: str,
    now: datetime,
    source: ScheduleSource = ScheduleSource.API,
    declared_version: int | None = None,
    schedule_id: str | None = None,
) -> ScheduleRow:
    """The stored row for a checked input; the cursor starts at ``now`` (no fire from
    before the schedule existed)."""
    rule, overlap, missed = given.checked()
    window = given.catchup_window or DEFAULT_CATCHUP_WINDOW
    return ScheduleRow(
        id=schedule_id or new_schedule_id(),
        workspace=workspace,
        name=given.name,
        workflow=given.workflow.strip(),
        cron=rule.cron.text if rule.cron else None,
        interval_seconds=int(rule.interval.total_seconds()) if rule.interval else None,
        timezone=rule.timezone,
        start_at=rule.start,
        end_at=rule.end,
        jitter_seconds=int(rule.jitter.total_seconds()),
        parameters=dict(given.parameters),
        overlap=overlap.value,
        catchup_window_seconds=int(window.total_seconds()),
        missed=missed.value,
        pause_on_failure=given.pause_on_failure,
        enabled=given.enabled,
        paused_reason=None if given.enabled else "created paused",
        source=source.value,
        declared_version=declared_version,
        cursor=now,
        revision=1,
        created_at=now,
        created_by=created_by,
        updated_at=now,
    )


def create(
    uow: UnitOfWork, given: ScheduleInput, *, workspace: str, created_by: str, now: datetime
) -> ScheduleRow:
    """Store a new schedule (ConflictError when the name is taken in ``workspace``)."""
    row = row_for(given, workspace=workspace, created_by=created_by, now=now)
    uow.insert_schedule(row)
    return row


def rule_of(row: ScheduleRow) -> ScheduleRule:
    """When a stored schedule fires (it was checked when stored)."""
    return ScheduleRule.checked(
        cron=row.cron,
        interval=timedelta(seconds=row.interval_seconds) if row.interval_seconds else None,
        timezone=row.timezone,
        start=row.start_at,
        end=row.end_at,
        jitter=timedelta(seconds=row.jitter_seconds),
    )


def policies_of(row: ScheduleRow, *, late_after: timedelta) -> Policies:
    return Policies(
        overlap=OverlapPolicy(row.overlap),
        catchup_window=timedelta(seconds=row.catchup_window_seconds),
        missed=MissedPolicy(row.missed),
        late_after=late_after,
    )


def find(uow: UnitOfWork, name: str, *, workspace: str | None) -> ScheduleRow:
    """The schedule named ``name`` (in ``workspace``; any when ``None``), else NotFound."""
    row = uow.schedule(workspace, name)
    if row is None:
        where = f" in workspace {workspace!r}" if workspace is not None else ""
        raise NotFound(f"no schedule named {name!r}{where}")
    return row


def pause(
    uow: UnitOfWork, name: str, *, workspace: str | None, now: datetime, reason: str | None = None
) -> ScheduleRow:
    """Stop firing: due fires are recorded as ``skipped_paused`` until :func:`resume`."""
    row = find(uow, name, workspace=workspace)
    why = reason or "paused"
    uow.update_schedule(row.id, enabled=False, paused_reason=why, updated_at=now)
    return replace(row, enabled=False, paused_reason=why, revision=row.revision + 1)


def resume(uow: UnitOfWork, name: str, *, workspace: str | None, now: datetime) -> ScheduleRow:
    """Fire again from now on (fires due while paused stay skipped)."""
    row = find(uow, name, workspace=workspace)
    uow.update_schedule(row.id, enabled=True, paused_reason=None, updated_at=now)
    return replace(row, enabled=True, paused_reason=None, revision=row.revision + 1)


def remove(uow: UnitOfWork, name: str, *, workspace: str | None) -> ScheduleRow:
    """Delete a schedule and its fires; a workflow's own schedule is a ConflictError
    (remove the trigger from the workflow, or pause it)."""
    row = find(uow, name, workspace=workspace)
    if row.source == ScheduleSource.RULE:
        raise ConflictError(
            f"schedule {name!r} is a timer rule's: remove the rule from its pack, or "
            "disable the rule (treadle rules disable)"
        )
    if row.source == ScheduleSource.WORKFLOW:
        raise ConflictError(
            f"schedule {name!r} is declared by workflow {row.workflow!r}: remove the trigger "
            "from the workflow (publish a new version) or pause the schedule"
        )
    uow.delete_schedule(row.id)
    return row


def shown(row: ScheduleRow, *, next_fire: datetime | None = None) -> dict[str, Any]:
    """A schedule as JSON (the CLI's ``--json`` and the API's answers)."""
    return {
        "name": row.name,
        "workspace": row.workspace,
        "workflow": row.workflow,
        "cron": row.cron,
        "interval_seconds": row.interval_seconds,
        "timezone": row.timezone,
        "start": _iso(row.start_at),
        "end": _iso(row.end_at),
        "jitter_seconds": row.jitter_seconds,
        "parameters": dict(row.parameters),
        "overlap": row.overlap,
        "catchup_window_seconds": row.catchup_window_seconds,
        "missed": row.missed,
        "pause_on_failure": row.pause_on_failure,
        "enabled": row.enabled,
        "paused_reason": row.paused_reason,
        "source": row.source,
        "declared_version": row.declared_version,
        "next_fire": _iso(next_fire),
        "created_at": _iso(row.created_at),
        "created_by": row.created_by,
        "updated_at": _iso(row.updated_at),
    }


def shown_fire(fire: FireRow) -> dict[str, Any]:
    """A fire as JSON: when, what happened, the run it started."""
    return {
        "nominal_time": _iso(fire.nominal_at),
        "due_time": _iso(fire.due_at),
        "kind": fire.kind,
        "status": fire.status,
        "reason": fire.reason,
        "run_id": fire.run_id,
        "run_status": fire.run_status,
        "recorded_at": _iso(fire.recorded_at),
        "started_at": _iso(fire.started_at),
    }


def next_fire(row: ScheduleRow, now: datetime) -> datetime | None:
    """The next nominal fire after ``now`` (or after the cursor when fires are pending)."""
    if not row.enabled:
        return None
    return rule_of(row).next_after(min(row.cursor, now))


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()
