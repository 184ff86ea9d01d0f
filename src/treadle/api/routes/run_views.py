"""More about one run: its graph to draw, its variable context, a task's attempts (input and
captured output), and moving a waiting step on.

The Attune plan's ``/workflow-executions/{id}/graph`` and ``/context``, and the workflows/v1
plan's ``TransitionStep``, served under ``/api/v1/runs/{run_id}`` and again, the same
handlers, under ``/api/v1/workflow-executions/{run_id}`` (as the runs routes are, in their
own module to keep each small). The graph, the context and the attempts are read in one
snapshot and masked by the services that build them
(:mod:`treadle.scheduler.service.run_graph`, :mod:`treadle.scheduler.service.run_context`,
:mod:`treadle.scheduler.service.attempt_views`); any role reads them. A step transition
needs the operator role and is checked and applied with the run locked, in one
transaction with its audit entry (``run.transition``)
(:mod:`treadle.scheduler.service.step_transitions`). Which runs a principal may see is
:func:`~treadle.api.workspaces.run_scope`'s call alone.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute

from treadle.api.audit import audited
from treadle.api.context import Context
from treadle.api.errors import CHANGE_RESPONSES, ERROR_RESPONSES
from treadle.api.models.run_views import (
    AttemptPage,
    RunGraph,
    StepTransitionRequest,
    VariableContext,
)
from treadle.api.models.runs import RunDocument
from treadle.api.routes.runs import ALIAS_PREFIX, PREFIX
from treadle.api.security import Operator, Viewer
from treadle.api.workspaces import run_scope
from treadle.clientlib.reading import document_after_control
from treadle.scheduler.service.attempt_views import MAX_ATTEMPT_PAGE, task_attempts
from treadle.scheduler.service.run_context import run_context
from treadle.scheduler.service.run_graph import run_graph
from treadle.scheduler.service.step_transitions import StepTransition, transition_step_in

__all__ = ["include", "router"]

router = APIRouter(responses=ERROR_RESPONSES)

RunId = Annotated[str, Path(description="The run's id.")]
Task = Annotated[str, Path(description="The task's name, as in the definition.")]


@router.get(
    "/{run_id}/graph",
    summary="A run as a graph to draw",
    name="get_run_graph",
    response_model=RunGraph,
)
def get_graph(run_id: RunId, principal: Viewer, context: Context) -> JSONResponse:
    """The run's definition as nodes (each task: kind, action, status of its latest
    execution, how many times it started, items' progress for with_items tasks, child run
    links, its inquiry) and edges (each transition target, with its condition), and the
    parallel groups the nested tasks belong to: everything a drawing needs."""
    with context.reading() as uow:
        run_scope(principal).check(uow, run_id)
        drawn = run_graph(uow, context.definitions, run_id)
    for node in drawn["nodes"]:
        node["child_runs"] = [
            {"id": child, "href": f"{PREFIX}/{child}"} for child in node["child_runs"]
        ]
    return JSONResponse(drawn)


@router.get(
    "/{run_id}/context",
    summary="A run's variable context",
    name="get_run_context",
    response_model=VariableContext,
)
def get_context(run_id: RunId, principal: Viewer, context: Context) -> JSONResponse:
    """What the run's templates read now: its parameters (secret ones as `***`) and the
    workflow variables as last published (any value of a secret masked)."""
    with context.reading() as uow:
        run_scope(principal).check(uow, run_id)
        shown = run_context(uow, run_id)
    return JSONResponse(shown)


@router.get(
    "/{run_id}/tasks/{task}/attempts",
    summary="A task's attempts, with their input and captured output",
    name="list_task_attempts",
    response_model=AttemptPage,
)
def list_attempts(
    *,
    run_id: RunId,
    task: Task,
    principal: Viewer,
    context: Context,
    execution: Annotated[
        int | None, Query(ge=1, description="Only this execution of the task (else all).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_ATTEMPT_PAGE, description="Attempts per page.")] = 20,
    cursor: Annotated[
        str | None,
        Query(description="The `next_cursor` of the previous page; omit it for the first."),
    ] = None,
) -> JSONResponse:
    """Each attempt of the task (by execution, item and attempt number, a page at a time):
    its status, worker and times, its error, the rendered input it was dispatched with
    (secret references and the action's secret parameters as `***`), and what its action
    wrote to stdout and stderr (bounded by the worker's `TREADLE_CAPTURE_OUTPUT_BYTES`,
    secrets as `***`). 404 for a task that has not started; 422 for a bad cursor."""
    workspace = run_scope(principal).workspace  # checked with the run row
    with context.reading() as uow:
        page = task_attempts(
            uow,
            run_id,
            task,
            workspace=workspace,
            execution=execution,
            cursor=cursor,
            limit=limit,
        )
    return JSONResponse(page)


@router.post(
    "/{run_id}/steps/{task}/transition",
    summary="Complete or fail a waiting step",
    name="transition_step",
    response_model=RunDocument,
    responses=CHANGE_RESPONSES,
)
def transition_step(
    run_id: RunId,
    task: Task,
    body: StepTransitionRequest,
    principal: Operator,
    context: Context,
) -> JSONResponse:
    """`complete`: the task waits on a person; its open inquiry is answered with `payload`
    (checked against the inquiry's schema: a misfit is 422 and changes nothing). `fail`:
    the task waits on a person or an event; what it waits on is closed and it fails with
    `reason`, its transitions deciding what follows. `skip` is not supported (409). Needs
    the operator role. 404 for an unknown run or task; 409 (nothing changed) when the step
    does not wait as the transition needs. Returns the run document after."""
    if body.transition is not StepTransition.COMPLETE and body.reason is None:
        raise RequestValidationError(
            [
                {
                    "type": "missing",
                    "loc": ("body", "reason"),
                    "msg": f"a reason is required to {body.transition.value} a step",
                    "input": None,
                }
            ]
        )
    details: dict[str, Any] = {"task": task, "transition": body.transition.value}
    if body.reason is not None:
        details["reason"] = body.reason
    runs = context.run_service()
    with audited(context, principal, "run.transition", run_id, details) as uow:
        run_scope(principal).check(uow, run_id)
        transition_step_in(
            uow,
            runs,
            run_id,
            task,
            body.transition,
            payload=body.payload,
            reason=body.reason,
            actor=principal.actor,
        )
    with context.reaching():
        state = runs.cached(run_id)
        if state is None:
            state = runs.load(run_id)
        document = document_after_control(context.store, state)
    return JSONResponse(document)


def _operation_id(route: APIRoute) -> str:
    return route.name


def _alias_operation_id(route: APIRoute) -> str:
    return f"{route.name}_as_workflow_execution"


def include(app: FastAPI) -> None:
    """Serve the routes under the runs routes' prefix and, with their own operation ids,
    under its ``workflow-executions`` alias."""
    app.include_router(
        router, prefix=PREFIX, tags=["runs"], generate_unique_id_function=_operation_id
    )
    app.include_router(
        router,
        prefix=ALIAS_PREFIX,
        tags=["workflow-executions (alias of runs)"],
        generate_unique_id_function=_alias_operation_id,
    )
