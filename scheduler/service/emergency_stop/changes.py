"""Setting and lifting emergency stops: what ``treadle emergency-stop`` and the API change.

Both work in the caller's transaction (the CLI's and the API's audited ones), so a stop
and its audit entry commit together, and both ``NOTIFY`` the schedulers, which enforce it
(:mod:`.guard`, :mod:`.sweep`). Setting a stop that holds already keeps it (its reason,
author and time) and only adds ``terminate`` when asked. Lifting a stop that does not hold
is refused, as is lifting the global stop where ``TREADLE_EMERGENCY_STOP`` is set: the
setting wins over ``off``.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime

from treadle.common.emergency_stop import (
    MAX_REASON,
    EmergencyStop,
    StopScope,
    StopSource,
    holding,
    scope_label,
)
from treadle.common.errors import ConflictError, ParameterError
from treadle.scheduler.store import UnitOfWork

__all__ = ["NoEmergencyStop", "StopPinned", "lift", "scope_of", "set_stop", "stop_reason"]


class NoEmergencyStop(ConflictError):
    """``off`` for a scope no stop holds; nothing was changed."""


class StopPinned(ConflictError):
    """``off`` for the global stop where ``TREADLE_EMERGENCY_STOP`` is set."""


def scope_of(workspace: str | None) -> tuple[StopScope, str]:
    """The scope ``--workspace`` names: its workspace, or global without one."""
    if workspace is None:
        return StopScope.GLOBAL, ""
    if not workspace.strip():
        raise ParameterError(["the workspace must not be empty"], subject="emergency stop")
    return StopScope.WORKSPACE, workspace


def stop_reason(reason: str | None, *, required: bool) -> str | None:
    """``reason`` stripped; ParameterError when required and blank, or too long."""
    text = (reason or "").strip()
    if not text:
        if required:
            raise ParameterError(
                ["a reason is needed (--reason): say why everything stops"],
                subject="emergency stop",
            )
        return None
    if len(text) > MAX_REASON:
        raise ParameterError(
            [f"the reason is {len(text)} characters long; at most {MAX_REASON}"],
            subject="emergency stop",
        )
    return text


def set_stop(
    uow: UnitOfWork,
    workspace: str | None,
    *,
    reason: str,
    terminate: bool,
    by: str,
    now: datetime,
    source: StopSource = StopSource.COMMAND,
) -> tuple[EmergencyStop, bool]:
    """Set the stop of ``workspace`` (global when ``None``); the stop that holds and
    whether it is new."""
    scope, name = scope_of(workspace)
    text = stop_reason(reason, required=True)
    assert text is not None
    stop, new = uow.set_emergency_stop(
        scope, name, reason=text, terminate=terminate, source=source, set_by=by, since=now
    )
    uow.notify_emergency_stops()
    return stop, new


def lift(
    uow: UnitOfWork,
    workspace: str | None,
    *,
    by: str,
    now: datetime,
    reason: str | None = None,
    setting: str | None = None,
) -> EmergencyStop:
    """Lift the stop of ``workspace`` (global when ``None``); the stop as lifted.

    ``setting``: ``TREADLE_EMERGENCY_STOP`` where this runs; while it is set, the global
    stop is not lifted (:class:`StopPinned`). :class:`NoEmergencyStop` when none holds.
    """
    scope, name = scope_of(workspace)
    why = stop_reason(reason, required=False)
    if scope is StopScope.GLOBAL and setting:
        raise StopPinned(
            "TREADLE_EMERGENCY_STOP is set here, and the global emergency stop holds while it "
            "is: unset it (wherever it is set, the schedulers too), then lift the stop"
        )
    stop = uow.holding_emergency_stop(scope, name)
    if stop is None:
        message = f"no emergency stop holds {_where(scope, name)}"
        other = holding(uow.emergency_stops(), name) if scope is StopScope.WORKSPACE else None
        if other is not None:
            message += "; the global one holds it: lift that one (without --workspace)"
        raise NoEmergencyStop(message)
    uow.lift_emergency_stop(stop.id, by=by, at=now, reason=why)
    uow.notify_emergency_stops()
    return dataclasses.replace(stop, lifted_at=now, lifted_by=by, lift_reason=why)


def _where(scope: StopScope, workspace: str) -> str:
    label = scope_label(scope, workspace)
    return "globally" if scope is StopScope.GLOBAL else label.replace(":", " ", 1)
