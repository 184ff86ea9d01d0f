"""The runs routes: list runs, read one, page its items and events, and control it.

Included under ``/api/v1/runs`` and again, the same handlers, under
``/api/v1/workflow-executions`` (the Attune plan's name; see :func:`include`). Each does
what :class:`treadle.Client` does with the same name, in the same shapes: reads happen in
one snapshot (``Store.snapshot``: a busy run never fails a read, nothing retries), the run
is the run document, and a control is checked and applied with the run locked, in one
transaction with its audit entry (``run.pause``...). Any principal may read; controls need
the operator role. Which runs a principal may see is :func:`run_scope`'s call alone.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Body, FastAPI, Path, Query
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from treadle.api.audit import audited
from treadle.api.context import Context
from treadle.api.errors import CHANGE_RESPONSES, ERROR_RESPONSES
from treadle.api.models.runs import (
    ControlRequest,
    EventPage,
    ItemPage,
    RunDocument,
    RunList,
    RunListItem,
    TaskList,
)
from treadle.api.security import Operator, Viewer
from treadle.api.workspaces import run_scope
from treadle.clientlib.changes import control_details
from treadle.clientlib.reading import document_after_control
from treadle.common.budget import checked_budget
from treadle.common.statuses import RunStatus
from treadle.scheduler.service.controls import Control, apply_control_in
from treadle.scheduler.service.run_document import item_page, stored_run_document
from treadle.scheduler.service.run_event_log import MAX_EVENT_PAGE, event_page
from treadle.scheduler.store import RunFilter
from treadle.scheduler.store.run_listing import MAX_PAGE
from treadle.scheduler.store.run_overview import MAX_UNIT_PAGE

__all__ = ["ALIAS_PREFIX", "PREFIX", "include", "router"]

#: Where the routes are served, and the alias they are served under too.
PREFIX = "/api/v1/runs"
ALIAS_PREFIX = "/api/v1/workflow-executions"

router = APIRouter(responses=ERROR_RESPONSES)

RunId = Annotated[str, Path(description="The run's id.")]
Cursor = Annotated[
    str | None,
    Query(description="The `next_cursor` of the previous page; omit it for the first."),
]


def _utc(moment: datetime | None) -> datetime | None:
    """A time given without an offset is UTC."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


@router.get("", summary="List runs, newest first", name="list_runs")
def list_runs(
    *,
    principal: Viewer,
    context: Context,
    status: Annotated[RunStatus | None, Query(description="Only runs in this status.")] = None,
    workflow: Annotated[str | None, Query(description="Only runs of this workflow ref.")] = None,
    parent: Annotated[str | None, Query(description="Only child runs of this run.")] = None,
    trigger: Annotated[
        str | None, Query(description="Only runs started by the outside event with this id.")
    ] = None,
    started_after: Annotated[
        datetime | None,
        Query(
            description="Only runs started (created) at or after this ISO time; UTC "
            "unless it has an offset."
        ),
    ] = None,
    started_before: Annotated[
        datetime | None, Query(description="Only runs started (created) before this ISO time.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Runs per page.")] = 50,
    cursor: Cursor = None,
) -> RunList:
    """A page of the runs matching every filter given. Pages hold every matching run once,
    newest first, even while runs start meanwhile (keyset pagination): pass `next_cursor`
    back as `cursor`, with the same filters, for the next page."""
    where = RunFilter(
        status=status,
        workflow=workflow,
        parent_run_id=parent,
        created_after=_utc(started_after),
        created_before=_utc(started_before),
        trigger_event_id=trigger,
    )
    with context.reading() as uow:
        page = uow.list_runs_page(run_scope(principal).listing(where), limit=limit, cursor=cursor)
    return RunList(items=[RunListItem.of(run) for run in page.runs], next_cursor=page.next_cursor)


@router.get("/{run_id}", summary="One run", name="get_run", response_model=RunDocument)
def get_run(
    run_id: RunId,
    principal: Viewer,
    context: Context,
    items: Annotated[
        bool, Query(description="List the items of with_items tasks (else counts only).")
    ] = False,
) -> JSONResponse:
    """The run document: status, parameters (secret ones as `***`), output, error, each
    task execution and the run's inquiries. with_items tasks carry `items_summary` (counts
    by status, the first failures); their `items` only with `items=true` (page big ones
    with the items route)."""
    workspace = run_scope(principal).workspace  # checked with the run row, no statement more
    with context.reading() as uow:
        document = stored_run_document(uow, run_id, items=items, workspace=workspace)
    return JSONResponse(document)


@router.get(
    "/{run_id}/tasks",
    summary="A run's task executions",
    name="list_run_tasks",
    response_model=TaskList,
)
def list_tasks(run_id: RunId, principal: Viewer, context: Context) -> JSONResponse:
    """Every task execution of the run, in the order they started (a task in a loop has
    one per pass), as in the run document."""
    workspace = run_scope(principal).workspace
    with context.reading() as uow:
        document = stored_run_document(uow, run_id, workspace=workspace)
    return JSONResponse({"run": run_id, "tasks": document["tasks"]})


@router.get(
    "/{run_id}/tasks/{task}/items",
    summary="A page of a with_items task's items",
    name="list_task_items",
    response_model=ItemPage,
)
def list_items(
    *,
    run_id: RunId,
    task: Annotated[str, Path(description="The task's name (its latest execution is paged).")],
    principal: Viewer,
    context: Context,
    limit: Annotated[int, Query(ge=1, le=MAX_UNIT_PAGE, description="Items per page.")] = 100,
    cursor: Cursor = None,
) -> JSONResponse:
    """The items of the task's latest execution, in item order, a page at a time; a cursor
    keeps paging the execution it began on. 404 for a task that has not started."""
    with context.reading() as uow:
        run_scope(principal).check(uow, run_id)
        page = item_page(uow, run_id, task, cursor=cursor, limit=limit)
    return JSONResponse(page)


@router.get(
    "/{run_id}/events",
    summary="A page of a run's event log",
    name="list_run_events",
    response_model=EventPage,
)
def list_events(
    run_id: RunId,
    principal: Viewer,
    context: Context,
    limit: Annotated[int, Query(ge=1, le=MAX_EVENT_PAGE, description="Events per page.")] = 100,
    cursor: Cursor = None,
) -> JSONResponse:
    """What the scheduler was told about the run, oldest first: the run's audit trail. The
    first event's context shows only the parameters (secret ones as `***`), who started
    the run and its parent; secret values are masked everywhere."""
    with context.reading() as uow:
        run_scope(principal).check(uow, run_id)
        page = event_page(uow, run_id, cursor=cursor, limit=limit)
    return JSONResponse(page)


#: Each control's summary and description in the OpenAPI document.
_CONTROL_DOCS: dict[Control, tuple[str, str]] = {
    Control.PAUSE: (
        "Pause a running run",
        "Nothing new starts; running tasks finish, then the run is `paused`. Its child "
        "runs are paused too. Only a running run can be paused.",
    ),
    Control.RESUME: (
        "Resume a paused run",
        "The run (and its child runs) continue exactly where they stopped. A run its budget "
        "stopped resumes with `budget`: the new limits (409 if the one it reached is not "
        "raised enough).",
    ),
    Control.CANCEL: (
        "Cancel a run",
        "Running tasks are revoked, timers and inquiries closed, child runs canceled. The "
        "reason becomes the run's error. 409 for a run that has ended.",
    ),
    Control.RETRY: (
        "Retry an ended run",
        "What failed, timed out or was cancelled runs again; succeeded tasks (and items) "
        "are kept. Only failed, timed out or canceled runs can be retried. With `task`, "
        "only that task runs again and the flow goes on from it (404 for a task the run's "
        "definition does not have, 409 when the task did not fail).",
    ),
    Control.COMPENSATE: (
        "Undo a run's work",
        "The tasks' `compensate` actions run, newest first; a run still going is "
        "cancelled first. The run ends `compensated`, or `failed`.",
    ),
}


def _control_route(control: Control) -> Callable[..., JSONResponse]:
    """The handler of ``POST /{run_id}/<control>``."""

    def control_run(
        run_id: RunId,
        principal: Operator,
        context: Context,
        body: Annotated[ControlRequest | None, Body()] = None,
    ) -> JSONResponse:
        reason = body.reason if body is not None else None
        given = body.budget if body is not None else None
        budget = None if given is None else checked_budget(given, subject="budget")
        task = body.task if body is not None else None
        runs = context.run_service()
        details = control_details(reason, budget, task)
        with audited(context, principal, f"run.{control.value}", run_id, details) as uow:
            run_scope(principal).check(uow, run_id)
            apply_control_in(
                uow,
                runs,
                run_id,
                control,
                reason=reason,
                by=principal.actor,
                budget=budget,
                task=task,
            )
        with context.reaching():
            state = runs.cached(run_id)
            if state is None:
                state = runs.load(run_id)
            document = document_after_control(context.store, state)
        return JSONResponse(document)

    control_run.__name__ = f"{control.value}_run"
    return control_run


for _control in Control:
    _summary, _description = _CONTROL_DOCS[_control]
    router.add_api_route(
        f"/{{run_id}}/{_control.value}",
        _control_route(_control),
        methods=["POST"],
        name=f"{_control.value}_run",
        summary=_summary,
        description=_description + " Needs the operator role. Returns the run as the "
        "control left it; 409 (nothing changed) when the control does not apply to it.",
        response_model=RunDocument,
        responses=CHANGE_RESPONSES,
    )


def _operation_id(route: APIRoute) -> str:
    return route.name


def _alias_operation_id(route: APIRoute) -> str:
    return f"{route.name}_as_workflow_execution"


def include(app: FastAPI) -> None:
    """Serve the routes under :data:`PREFIX` and, with their own operation ids, under
    :data:`ALIAS_PREFIX`."""
    app.include_router(
        router, prefix=PREFIX, tags=["runs"], generate_unique_id_function=_operation_id
    )
    app.include_router(
        router,
        prefix=ALIAS_PREFIX,
        tags=["workflow-executions (alias of runs)"],
        generate_unique_id_function=_alias_operation_id,
    )
