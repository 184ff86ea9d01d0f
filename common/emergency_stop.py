"""The emergency stop as data: which runs a stop holds, and how it reads to people.

An emergency stop (docs/governance.md#emergency-stop) is global or holds one workspace.
While one holds a run's workspace, no scheduler publishes the run's new dispatches, its
queued attempts are taken back, the run pauses (reason :data:`EMERGENCY_STOP`), and
schedules skip their fires. The rows, the commands and the schedulers' enforcement live
in the store and the services; this module holds the pure parts they all share (no
clock, no I/O), so the CLI, the API, ``why`` and the schedulers word a stop the same way.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

#: The reason runs pause with, the prefix of the reason their taken-back attempts end
#: with, and the ``why`` reason and the schedules' fire outcome it shows as.
EMERGENCY_STOP = "emergency_stop"

#: Who a stop that ``TREADLE_EMERGENCY_STOP`` holds was set by, in its row and the audit log.
SETTING_ACTOR = "setting:TREADLE_EMERGENCY_STOP"

#: The longest reason a stop may be given (it is shown in runs' events and errors).
MAX_REASON = 1000


class StopScope(StrEnum):
    """What a stop holds: every workspace, or one."""

    GLOBAL = "global"
    WORKSPACE = "workspace"


class StopSource(StrEnum):
    """Where a stop comes from: a command (CLI or API), or the setting."""

    COMMAND = "command"
    SETTING = "setting"


@dataclass(frozen=True)
class EmergencyStop:
    """One stop: its scope (``workspace`` is ``''`` for a global one), why, who set it and
    when; ``terminate`` also ends the attempts that are running. Lifted stops keep their
    row (the history), with who lifted them, when and why."""

    id: int
    scope: StopScope
    workspace: str
    reason: str
    terminate: bool
    source: StopSource
    set_by: str
    since: datetime
    lifted_at: datetime | None = None
    lifted_by: str | None = None
    lift_reason: str | None = None

    @property
    def active(self) -> bool:
        return self.lifted_at is None

    @property
    def label(self) -> str:
        """``global`` or ``workspace:<name>``: the metric's ``scope`` and the audit target."""
        return scope_label(self.scope, self.workspace)

    def covers(self, workspace: str) -> bool:
        """Whether this stop holds the runs of ``workspace``."""
        return self.scope is StopScope.GLOBAL or self.workspace == workspace

    def describe(self) -> str:
        """``emergency stop (global) since 2026-...Z by cli:ana: <reason>``."""
        where = "global" if self.scope is StopScope.GLOBAL else f"workspace {self.workspace}"
        return f"emergency stop ({where}) since {_iso(self.since)} by {self.set_by}: {self.reason}"

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "scope": self.scope.value,
            "workspace": self.workspace or None,
            "reason": self.reason,
            "terminate": self.terminate,
            "source": self.source.value,
            "set_by": self.set_by,
            "since": _iso(self.since),
            "lifted_at": _iso(self.lifted_at) if self.lifted_at is not None else None,
            "lifted_by": self.lifted_by,
            "lift_reason": self.lift_reason,
        }


@dataclass(frozen=True)
class StopCover:
    """What a set of holding stops covers: everything, or these workspaces."""

    everything: bool = False
    workspaces: frozenset[str] = frozenset()

    @property
    def empty(self) -> bool:
        return not self.everything and not self.workspaces

    def covers(self, workspace: str) -> bool:
        return self.everything or workspace in self.workspaces


def cover_of(stops: Iterable[EmergencyStop]) -> StopCover:
    """What the active ones among ``stops`` hold."""
    active = [stop for stop in stops if stop.active]
    return StopCover(
        everything=any(stop.scope is StopScope.GLOBAL for stop in active),
        workspaces=frozenset(s.workspace for s in active if s.scope is StopScope.WORKSPACE),
    )


def holding(stops: Iterable[EmergencyStop], workspace: str) -> EmergencyStop | None:
    """The stop that holds ``workspace``'s runs: the global one first, else the workspace's."""
    covering = [stop for stop in stops if stop.active and stop.covers(workspace)]
    covering.sort(key=lambda stop: (stop.scope is not StopScope.GLOBAL, stop.id))
    return covering[0] if covering else None


def scope_label(scope: StopScope, workspace: str) -> str:
    return "global" if scope is StopScope.GLOBAL else f"workspace:{workspace}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


__all__ = [
    "EMERGENCY_STOP",
    "MAX_REASON",
    "SETTING_ACTOR",
    "EmergencyStop",
    "StopCover",
    "StopScope",
    "StopSource",
    "cover_of",
    "holding",
    "scope_label",
]
