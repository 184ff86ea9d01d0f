"""The bodies of the emergency-stop routes, as the OpenAPI document describes them.

What a stop does: docs/governance.md#emergency-stop; the rules the routes share with
``treadle emergency-stop``: :mod:`treadle.scheduler.service.emergency_stop.changes`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from treadle.common.emergency_stop import MAX_REASON, EmergencyStop

__all__ = ["StopItem", "StopList", "StopOff", "StopOn"]

Scope = Literal["workspace", "global"]


class StopOn(BaseModel):
    """Stop the token's workspace, or (`scope: global`, for an admin of the `default`
    workspace) every workspace."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=MAX_REASON, description="Why (shown).")
    scope: Scope = "workspace"
    terminate: bool = Field(
        default=False,
        description="End running attempts too (each runs again after the stop); otherwise "
        "they finish.",
    )


class StopOff(BaseModel):
    """Lift the stop of the token's workspace, or the global one."""

    model_config = ConfigDict(extra="forbid")

    scope: Scope = "workspace"
    reason: str | None = Field(default=None, max_length=MAX_REASON, description="Why (shown).")


class StopItem(BaseModel):
    """One emergency stop: what it holds, why, who set it and since when; once lifted, who
    lifted it, when and why."""

    scope: Scope
    workspace: str | None = Field(description="The workspace it holds; null when global.")
    reason: str
    terminate: bool
    source: Literal["command", "setting"] = Field(
        description="`setting`: TREADLE_EMERGENCY_STOP set it (a scheduler's)."
    )
    set_by: str
    since: datetime
    lifted_at: datetime | None
    lifted_by: str | None
    lift_reason: str | None
    new: bool | None = Field(
        default=None, description="On `on`: false when a stop held already (it is kept)."
    )

    @classmethod
    def of(cls, stop: EmergencyStop, *, new: bool | None = None) -> StopItem:
        return cls(
            scope=stop.scope.value,
            workspace=stop.workspace or None,
            reason=stop.reason,
            terminate=stop.terminate,
            source=stop.source.value,
            set_by=stop.set_by,
            since=stop.since,
            lifted_at=stop.lifted_at,
            lifted_by=stop.lifted_by,
            lift_reason=stop.lift_reason,
            new=new,
        )


class StopList(BaseModel):
    """The stops that hold the token's workspace: the global one, its own one."""

    items: list[StopItem]
