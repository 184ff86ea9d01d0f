"""The runs' pages: the list (filtered, paged, refreshed every 2 s) and a run's page with
its DAG, tasks, timeline and inquiries, kept live by server-sent events.

``GET /ui/runs`` lists runs (status and workflow filters, a run id search, keyset pages as
the JSON API's ``GET /runs``); its script fetches ``/ui/runs/rows`` every 2 s and swaps the
table body in. ``GET /ui/runs/{id}`` is the run's page; ``GET /ui/runs/{id}/stream`` is a
``text/event-stream`` saying ``run`` whenever the run's version changes and ``ended`` once
the run has ended. The stream waits to be woken by the app's
:class:`~treadle.api.run_changes.RunChanges` (PostgreSQL's NOTIFY, or the embedded
runner's saves on SQLite), then reads the run's version (one small read); it also looks
every few seconds unwoken, and every half second while no notice can be heard. The
page's script then fetches ``/ui/runs/{id}/live`` (the page's live parts) and swaps in
those that changed. A stream closes after :data:`STREAM_SECONDS` (the browser
reconnects), so no request outlives a shutdown for long.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Annotated, Any, Final

import anyio
from fastapi import APIRouter, Depends, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response, StreamingResponse

from treadle.api.context import ApiContext, Context
from treadle.api.routes import runs as runs_api
from treadle.api.run_changes import RunChanges
from treadle.api.ui.auth import UiUser, User
from treadle.api.ui.html_route import HtmlRoute
from treadle.api.ui.layout import page
from treadle.api.ui.rendering import render
from treadle.api.ui.run_view import read_run_view
from treadle.api.ui.schema_form import form_fields
from treadle.api.workspaces import run_scope
from treadle.common.errors import NotFound, ParameterError
from treadle.common.statuses import RunStatus

__all__ = ["STREAM_SECONDS", "render_run_page", "router"]

router = APIRouter(prefix="/ui", route_class=HtmlRoute, include_in_schema=False)

#: How long one stream lasts.
STREAM_SECONDS: Final = 25.0
#: Runs per page of the list.
RUNS_PER_PAGE: Final = 25

Text = Annotated[str | None, Query(max_length=500)]


def _status(text: str | None) -> RunStatus | None:
    if not text:
        return None
    try:
        return RunStatus(text)
    except ValueError:
        known = ", ".join(s.value for s in RunStatus)
        raise ParameterError([f"status {text!r} is not one of {known}"], subject="status") from None


@dataclass(frozen=True)
class RunFilters:
    """The runs list's filters and page, as the query gives them: the page and its table's
    refresh read the same ones (:func:`run_filters`)."""

    status: str | None = None
    workflow: str | None = None
    run: str | None = None
    cursor: str | None = None

    def shown(self) -> dict[str, str]:
        """The filters as the form shows them."""
        return {"status": self.status or "", "workflow": self.workflow or "", "run": self.run or ""}


def run_filters(
    status: Text = None, workflow: Text = None, run: Text = None, cursor: Text = None
) -> RunFilters:
    """The runs list's query parameters (a FastAPI dependency)."""
    return RunFilters(status, workflow, run, cursor)


Filters = Annotated[RunFilters, Depends(run_filters)]


def _listing(context: ApiContext, user: UiUser, filters: RunFilters) -> dict[str, Any]:
    """The runs the list shows: one page of the filtered runs, or the run searched for."""
    wanted = _status(filters.status)
    run = filters.run
    if run and run.strip():
        try:
            answer = runs_api.get_run(run.strip(), user.principal, context)
        except NotFound:
            return {"runs": [], "next_cursor": None}
        shown = json.loads(bytes(answer.body))
        keys = ("id", "workflow", "status", "created_at", "finished_at", "parent_run")
        return {"runs": [{key: shown.get(key) for key in keys}], "next_cursor": None}
    listed = runs_api.list_runs(
        principal=user.principal,
        context=context,
        status=wanted,
        workflow=filters.workflow or None,
        limit=RUNS_PER_PAGE,
        cursor=filters.cursor or None,
    )
    return {
        "runs": [item.model_dump(mode="json") for item in listed.items],
        "next_cursor": listed.next_cursor,
    }


@router.get("", name="ui_home")
def home() -> Response:
    """The UI starts at the runs."""
    return RedirectResponse("/ui/runs", status_code=303)


@router.get("/runs", name="ui_runs")
def runs_page(request: Request, user: User, context: Context, filters: Filters) -> Response:
    """The runs list."""
    return page(
        request,
        context,
        user,
        "runs.html",
        statuses=[s.value for s in RunStatus],
        filters=filters.shown(),
        cursor=filters.cursor or "",
        **_listing(context, user, filters),
    )


@router.get("/runs/rows", name="ui_run_rows")
def run_rows(request: Request, user: User, context: Context, filters: Filters) -> Response:
    """The list's table body alone, for the page's refresh."""
    listing = _listing(context, user, filters)
    return render(request, "run_rows.html", filters=filters.shown(), **listing)


def render_run_page(
    request: Request,
    context: ApiContext,
    user: UiUser,
    run_id: str,
    *,
    task: str | None = None,
    items_cursor: str | None = None,
    attempts_cursor: str | None = None,
    template: str = "run.html",
    status: int = 200,
    **values: Any,
) -> Response:
    """The run's page (or its live parts), with ``values`` (an answer's problems...)."""
    view = read_run_view(
        context,
        user.principal,
        run_id,
        task=task,
        items_cursor=items_cursor,
        attempts_cursor=attempts_cursor,
    )
    forms = {
        inquiry["id"]: form_fields(inquiry.get("schema")) for inquiry in view.pending_inquiries
    }
    return page(
        request,
        context,
        user,
        template,
        status=status,
        run=view.document,
        view=view,
        forms=forms,
        selected=task or "",
        **values,
    )


@router.get("/runs/{run_id}", name="ui_run")
def run_page(
    *,
    request: Request,
    run_id: str,
    user: User,
    context: Context,
    task: Text = None,
    items: Text = None,
    attempts: Text = None,
) -> Response:
    """A run's page (``task``: its details, ``items`` and ``attempts``: their pages)."""
    return render_run_page(
        request,
        context,
        user,
        run_id,
        task=task or None,
        items_cursor=items,
        attempts_cursor=attempts,
    )


@router.get("/runs/{run_id}/live", name="ui_run_live")
def run_live(
    *,
    request: Request,
    run_id: str,
    user: User,
    context: Context,
    task: Text = None,
    items: Text = None,
) -> Response:
    """The run page's live parts (status, controls, DAG, tasks, inquiries, details)."""
    return render_run_page(
        request,
        context,
        user,
        run_id,
        task=task or None,
        items_cursor=items,
        template="run_live.html",
    )


def _run_version(context: ApiContext, user: UiUser, run_id: str) -> tuple[int, RunStatus] | None:
    with context.reading() as uow:
        run_scope(user.principal).check(uow, run_id)
        return uow.run_status(run_id)


@router.get("/runs/{run_id}/stream", name="ui_run_stream")
async def run_stream(request: Request, run_id: str, user: User, context: Context) -> Response:
    """Server-sent events: ``run`` when the run changed, ``ended`` once it has ended."""
    first = await run_in_threadpool(_run_version, context, user, run_id)
    if first is None:
        raise NotFound(f"run {run_id} not found")
    changes: RunChanges = request.app.state.run_changes

    async def events() -> AsyncIterator[str]:
        yield "retry: 1000\n\n"
        last: tuple[int, RunStatus] | None = None
        deadline = anyio.current_time() + STREAM_SECONDS
        current: tuple[int, RunStatus] | None = first
        with changes.subscribe(run_id) as changed:
            while current is not None:
                if current != last:
                    data = json.dumps({"version": current[0], "status": current[1].value})
                    yield f"event: run\ndata: {data}\n\n"
                    last = current
                if current[1].is_terminal:
                    yield "event: ended\ndata: {}\n\n"
                    return
                left = deadline - anyio.current_time()
                if left <= 0 or await request.is_disconnected():
                    return
                await changed.wait(min(changes.seconds_between_looks(), left))
                current = await run_in_threadpool(_run_version, context, user, run_id)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )
