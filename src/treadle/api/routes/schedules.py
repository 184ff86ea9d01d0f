"""The schedules routes: admins manage the schedules ``treadle beat`` fires.

Under ``/api/v1/schedules``, each needing the admin role and acting on the token's
workspace only (another workspace's schedule is 404): create, list, show, pause, resume,
delete, trigger now, backfill, and the fires. Every change is recorded in the audit log
(``schedule.create`` ...). What the routes do lives in
:mod:`treadle.scheduler.service.schedules` and :mod:`treadle.clientlib.schedules`,
shared with ``treadle schedules``; a running beat sees a change within
``TREADLE_BEAT_RELOAD_SECONDS``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query, Response

from treadle.api.audit import audited
from treadle.api.context import Context
from treadle.api.errors import CHANGE_RESPONSES, ERROR_RESPONSES
from treadle.api.models.schedules import (
    BackfillRequest,
    FireItem,
    FireList,
    PauseRequest,
    ScheduleCreate,
    ScheduleItem,
    ScheduleList,
)
from treadle.api.security import Admin
from treadle.clientlib import schedules as firing
from treadle.scheduler.service import schedules as service
from treadle.scheduler.store.schedule_repo import FireRow, ScheduleRow

__all__ = ["PREFIX", "include", "router"]

#: Where the routes are served.
PREFIX = "/api/v1/schedules"

router = APIRouter()

Name = Annotated[str, Path(min_length=1, max_length=200, description="The schedule's name.")]
READ_RESPONSES: dict[int | str, dict[str, Any]] = {
    **ERROR_RESPONSES,
    403: CHANGE_RESPONSES[403],
}


def _item(row: ScheduleRow, now: Any, fires: dict[str, int] | None = None) -> ScheduleItem:
    shown = service.shown(row, next_fire=service.next_fire(row, now))
    return ScheduleItem.model_validate({**shown, "fires": fires})


def _fires(fires: list[FireRow]) -> FireList:
    return FireList(items=[FireItem.model_validate(service.shown_fire(f)) for f in fires])


@router.post(
    "",
    summary="Create a schedule",
    name="create_schedule",
    status_code=201,
    response_model=ScheduleItem,
    responses={**ERROR_RESPONSES, **CHANGE_RESPONSES},
)
def create_schedule(body: ScheduleCreate, principal: Admin, context: Context) -> ScheduleItem:
    """Make a schedule of the token's workspace that starts `workflow` (its latest
    published version) with `parameters`. A bad cron, zone or policy is 422; a taken name
    409. Needs the admin role."""
    given = service.ScheduleInput(
        name=body.name,
        workflow=body.workflow,
        cron=body.cron,
        interval=timedelta(seconds=body.interval_seconds) if body.interval_seconds else None,
        timezone=body.timezone,
        start=body.start,
        end=body.end,
        jitter=timedelta(seconds=body.jitter_seconds),
        parameters=body.parameters,
        overlap=body.overlap,
        catchup_window=(
            timedelta(seconds=body.catchup_window_seconds) if body.catchup_window_seconds else None
        ),
        missed=body.missed,
        pause_on_failure=body.pause_on_failure,
        enabled=body.enabled,
    )
    details = {"workflow": body.workflow}
    with audited(context, principal, "schedule.create", body.name, details) as uow:
        row = service.create(
            uow, given, workspace=principal.workspace, created_by=principal.actor,
            now=context.clock(),
        )  # fmt: skip
    return _item(row, context.clock())


@router.get(
    "",
    summary="List the schedules",
    name="list_schedules",
    response_model=ScheduleList,
    responses=READ_RESPONSES,
)
def list_schedules(principal: Admin, context: Context) -> ScheduleList:
    """The schedules of the token's workspace, by name. Needs the admin role."""
    with context.reading() as uow:
        rows = uow.list_schedules(principal.workspace)
    now = context.clock()
    return ScheduleList(items=[_item(row, now) for row in rows])


@router.get(
    "/{name}",
    summary="Show a schedule",
    name="get_schedule",
    response_model=ScheduleItem,
    responses=READ_RESPONSES,
)
def get_schedule(name: Name, principal: Admin, context: Context) -> ScheduleItem:
    """A schedule with its next fire and its fires counted by status."""
    with context.reading() as uow:
        row = service.find(uow, name, workspace=principal.workspace)
        counts = uow.fire_counts(row.id)
    return _item(row, context.clock(), counts)


@router.post(
    "/{name}/pause",
    summary="Pause a schedule",
    name="pause_schedule",
    response_model=ScheduleItem,
    responses={**ERROR_RESPONSES, **CHANGE_RESPONSES},
)
def pause_schedule(
    name: Name, principal: Admin, context: Context, body: PauseRequest | None = None
) -> ScheduleItem:
    """Fires that come due while paused are recorded as `skipped_paused`."""
    reason = body.reason if body is not None else None
    with audited(context, principal, "schedule.pause", name, {"reason": reason}) as uow:
        row = service.pause(
            uow, name, workspace=principal.workspace, now=context.clock(), reason=reason
        )
    return _item(row, context.clock())


@router.post(
    "/{name}/resume",
    summary="Resume a schedule",
    name="resume_schedule",
    response_model=ScheduleItem,
    responses={**ERROR_RESPONSES, **CHANGE_RESPONSES},
)
def resume_schedule(name: Name, principal: Admin, context: Context) -> ScheduleItem:
    """Fire again from now on; fires skipped while paused stay skipped."""
    with audited(context, principal, "schedule.resume", name) as uow:
        row = service.resume(uow, name, workspace=principal.workspace, now=context.clock())
    return _item(row, context.clock())


@router.delete(
    "/{name}",
    summary="Delete a schedule",
    name="delete_schedule",
    status_code=204,
    response_class=Response,
    responses={**ERROR_RESPONSES, **CHANGE_RESPONSES},
)
def delete_schedule(name: Name, principal: Admin, context: Context) -> Response:
    """Delete a schedule and its fires (its runs stay). One a workflow declares is 409:
    remove the trigger from the workflow, or pause it."""
    with audited(context, principal, "schedule.delete", name) as uow:
        service.remove(uow, name, workspace=principal.workspace)
    return Response(status_code=204)


@router.post(
    "/{name}/trigger",
    summary="Fire a schedule now",
    name="trigger_schedule",
    response_model=FireItem,
    responses={**ERROR_RESPONSES, **CHANGE_RESPONSES},
)
def trigger_schedule(name: Name, principal: Admin, context: Context) -> FireItem:
    """Fire now, as a `manual` fire under the schedule's overlap policy: the fire says
    whether a run started (and which), was buffered or skipped, or could not start."""
    fire = firing.schedule_firing(
        context.store, context.settings, clock=context.clock, definitions=context.definitions
    )
    with audited(context, principal, "schedule.trigger", name) as uow:
        recorded = firing.trigger_now(uow, fire, name, workspace=principal.workspace)
    return FireItem.model_validate(service.shown_fire(recorded))


@router.post(
    "/{name}/backfill",
    summary="Backfill a schedule",
    name="backfill_schedule",
    response_model=FireList,
    responses={**ERROR_RESPONSES, **CHANGE_RESPONSES},
)
def backfill_schedule(
    name: Name, body: BackfillRequest, principal: Admin, context: Context
) -> FireList:
    """Fire every nominal time in `[start, end]` now (at most 1000; more is 422); times
    recorded already are returned as they were, not fired again."""
    fire = firing.schedule_firing(
        context.store, context.settings, clock=context.clock, definitions=context.definitions
    )
    details = {"from": body.start.isoformat(), "to": body.end.isoformat()}
    with audited(context, principal, "schedule.backfill", name, details) as uow:
        fires = firing.backfill(
            uow, fire, name, body.start, body.end,
            workspace=principal.workspace, overlap=body.overlap,
        )  # fmt: skip
    return _fires(fires)


@router.get(
    "/{name}/fires",
    summary="List a schedule's fires",
    name="list_schedule_fires",
    response_model=FireList,
    responses=READ_RESPONSES,
)
def list_fires(
    name: Name,
    principal: Admin,
    context: Context,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> FireList:
    """The schedule's fires, newest first."""
    with context.reading() as uow:
        row = service.find(uow, name, workspace=principal.workspace)
        fires = uow.fires(row.id, limit=limit)
    return _fires(fires)


def include(app: FastAPI) -> None:
    """Serve the routes under :data:`PREFIX`."""
    app.include_router(
        router,
        prefix=PREFIX,
        tags=["schedules"],
        generate_unique_id_function=lambda route: route.name,
    )
