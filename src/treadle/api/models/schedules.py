"""The bodies of the schedules routes, as the OpenAPI document describes them.

A schedule's meaning (rule, policies, daylight saving) is ``docs/schedules.md``; what the
routes check is :class:`~treadle.scheduler.service.schedules.ScheduleInput`, shared with
the CLI and workflow triggers, so the three give the same errors (422).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from treadle.common.schedules import MAX_SPAN, MissedPolicy, OverlapPolicy

#: The longest interval, jitter or catch-up window, in seconds.
SPAN_SECONDS = int(MAX_SPAN.total_seconds())

__all__ = [
    "BackfillRequest",
    "FireItem",
    "FireList",
    "PauseRequest",
    "ScheduleCreate",
    "ScheduleItem",
    "ScheduleList",
]


class ScheduleCreate(BaseModel):
    """A new schedule of the token's workspace: give `cron` or `interval_seconds`."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200, description="Unique in the workspace.")
    workflow: str = Field(min_length=1, max_length=300, description="The workflow ref it starts.")
    cron: str | None = Field(
        default=None, max_length=200, description="5 fields, or 6 with seconds first."
    )
    interval_seconds: int | None = Field(
        default=None, ge=1, le=SPAN_SECONDS, description="Instead of `cron`."
    )
    timezone: str = Field(default="UTC", max_length=100, description="IANA zone of the cron.")
    start: datetime | None = Field(default=None, description="No fire before (with offset).")
    end: datetime | None = Field(default=None, description="No fire after (with offset).")
    jitter_seconds: int = Field(
        default=0, ge=0, le=SPAN_SECONDS, description="Delay each fire up to this."
    )
    parameters: dict[str, Any] = Field(default_factory=dict)
    overlap: OverlapPolicy = OverlapPolicy.SKIP
    catchup_window_seconds: int | None = Field(
        default=None, ge=1, le=SPAN_SECONDS, description="Default 1 day."
    )
    missed: MissedPolicy = MissedPolicy.ALL
    pause_on_failure: bool = False
    enabled: bool = True


class ScheduleItem(BaseModel):
    """A schedule, with its next fire (null when paused or past its end)."""

    name: str
    workspace: str
    workflow: str
    cron: str | None
    interval_seconds: int | None
    timezone: str
    start: datetime | None
    end: datetime | None
    jitter_seconds: int
    parameters: dict[str, Any]
    overlap: OverlapPolicy
    catchup_window_seconds: int
    missed: MissedPolicy
    pause_on_failure: bool
    enabled: bool
    paused_reason: str | None
    source: str = Field(
        description="`api` (the API or the CLI), `workflow` (its triggers) or `rule` (a "
        "timer rule's)."
    )
    declared_version: int | None
    next_fire: datetime | None
    created_at: datetime
    created_by: str
    updated_at: datetime
    fires: dict[str, int] | None = Field(
        default=None, description="How many fires of each status (on the single view)."
    )


class ScheduleList(BaseModel):
    """The workspace's schedules, by name."""

    items: list[ScheduleItem]


class PauseRequest(BaseModel):
    """Why the schedule is paused (shown with it)."""

    model_config = ConfigDict(extra="forbid")

    reason: str | None = Field(default=None, max_length=500)


class BackfillRequest(BaseModel):
    """Fire each nominal time of the schedule in `[start, end]` now, in order."""

    model_config = ConfigDict(extra="forbid")

    start: datetime
    end: datetime
    overlap: OverlapPolicy = Field(
        default=OverlapPolicy.ALLOW_ALL, description="For these fires only."
    )


class FireItem(BaseModel):
    """One fire: its nominal and due time, what happened and the run it started."""

    nominal_time: datetime
    due_time: datetime
    kind: str = Field(description="`scheduled`, `manual` (trigger) or `backfill`.")
    status: str = Field(
        description="`started`, `buffered`, `skipped_overlap`, `skipped_catchup_window`, "
        "`skipped_missed`, `skipped_paused`, `skipped_emergency_stop` (an emergency stop "
        "held the workspace), `skipped_criteria` (a timer rule's criteria were false) or "
        "`failed_to_start`."
    )
    reason: str | None
    run_id: str | None
    run_status: str | None = Field(description="How the run ended, once beat saw it end.")
    recorded_at: datetime
    started_at: datetime | None


class FireList(BaseModel):
    """Fires, newest first (a backfill's in order)."""

    items: list[FireItem]
