"""The emergency-stop routes: admins halt their workspace's runs (or every run), and let go.

Under ``/api/v1/emergency-stop``, each needing the admin role: ``GET`` (the stops holding
the token's workspace), ``POST /on`` and ``POST /off``, each recorded in the audit log
(``emergency_stop.on``, ``emergency_stop.off``), refusals too. A token acts on its own
workspace; ``scope: global`` (every workspace) needs an admin of the ``default``
workspace, the one the CLI acts as (403 otherwise). What a stop does, and that schedulers
enforce it: docs/governance.md#emergency-stop; the rules are shared with ``treadle
emergency-stop`` (:mod:`treadle.scheduler.service.emergency_stop.changes`).
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from treadle.api.audit import audited
from treadle.api.context import Context
from treadle.api.errors import CHANGE_RESPONSES, ERROR_RESPONSES
from treadle.api.models.emergency_stop import Scope, StopItem, StopList, StopOff, StopOn
from treadle.api.security import Admin
from treadle.common.access import DEFAULT_WORKSPACE, Principal
from treadle.common.errors import Forbidden
from treadle.scheduler.service.emergency_stop.changes import lift, set_stop

__all__ = ["PREFIX", "include", "router"]

#: Where the routes are served.
PREFIX = "/api/v1/emergency-stop"

router = APIRouter()
_RESPONSES = {**ERROR_RESPONSES, **CHANGE_RESPONSES}


def _workspace(principal: Principal, scope: Scope) -> str | None:
    """The workspace a change acts on (None: every one); Forbidden for a global change
    by an admin of another workspace than ``default``."""
    if scope == "workspace":
        return principal.workspace
    if principal.workspace != DEFAULT_WORKSPACE:
        raise Forbidden(
            f"a global emergency stop needs an admin of the '{DEFAULT_WORKSPACE}' workspace; "
            f"this token acts in '{principal.workspace}' (stop it with scope 'workspace')"
        )
    return None


def _target(principal: Principal, scope: Scope) -> str:
    return "global" if scope == "global" else f"workspace:{principal.workspace}"


@router.get(
    "",
    summary="The emergency stops holding the workspace",
    name="list_emergency_stops",
    response_model=StopList,
    responses=_RESPONSES,
)
def list_stops(principal: Admin, context: Context) -> StopList:
    """The global stop and the workspace's own, while they hold. Needs the admin role."""
    with context.reading() as uow:
        stops = uow.emergency_stops()
    mine = [s for s in stops if s.covers(principal.workspace)]
    return StopList(items=[StopItem.of(stop) for stop in mine])


@router.post(
    "/on",
    summary="Set an emergency stop",
    name="emergency_stop_on",
    response_model=StopItem,
    responses=_RESPONSES,
)
def stop_on(body: StopOn, principal: Admin, context: Context) -> StopItem:
    """Stop the workspace's runs (or every run): schedulers withhold new dispatches, take
    back attempts waiting on the broker (each runs again after the stop), pause the runs
    and skip schedule fires; running attempts finish unless `terminate`. A stop that holds
    already is kept (`new: false`; `terminate` is added when asked). Needs the admin role."""
    details = {"reason": body.reason, "terminate": body.terminate, "scope": body.scope}
    target = _target(principal, body.scope)
    with audited(context, principal, "emergency_stop.on", target, details) as uow:
        stop, new = set_stop(
            uow,
            _workspace(principal, body.scope),
            reason=body.reason,
            terminate=body.terminate,
            by=principal.actor,
            now=context.clock(),
        )
    return StopItem.of(stop, new=new)


@router.post(
    "/off",
    summary="Lift an emergency stop",
    name="emergency_stop_off",
    response_model=StopItem,
    responses=_RESPONSES,
)
def stop_off(body: StopOff, principal: Admin, context: Context) -> StopItem:
    """Lift the stop: schedulers resume the runs it paused (not those an operator paused).
    409 when no such stop holds, or for the global one while TREADLE_EMERGENCY_STOP is
    set on the API server. Needs the admin role."""
    details = {"reason": body.reason, "scope": body.scope}
    target = _target(principal, body.scope)
    with audited(context, principal, "emergency_stop.off", target, details) as uow:
        stop = lift(
            uow,
            _workspace(principal, body.scope),
            by=principal.actor,
            now=context.clock(),
            reason=body.reason,
            setting=context.settings.emergency_stop,
        )
    return StopItem.of(stop)


def include(app: FastAPI) -> None:
    """Serve the routes under :data:`PREFIX`."""
    app.include_router(
        router,
        prefix=PREFIX,
        tags=["emergency-stop"],
        generate_unique_id_function=lambda r: r.name,
    )
