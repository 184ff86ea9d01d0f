"""The workflows' and schedules' pages, and the form to send an event.

``/ui/workflows`` lists the published workflows the user's workspace sees;
``/ui/workflows/{ref}`` shows one: its versions, its definition, a form built from its
parameters to start a run (operators), the YAML editor (admins; its forms are
:mod:`.editor_routes`'), and ``/ui/workflows/{ref}/diff`` compares two
versions (the run page links a run's version to the latest this way). ``/ui/schedules``
and ``/ui/schedules/{name}`` show the schedules with their next fires and fire history,
with pause, resume and "trigger now" for admins (schedules are the admins', as in the
JSON API). Each reads through the JSON API's handlers or the services they use, with the
user's principal, so workspaces and roles apply as there.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from treadle.api.context import ApiContext, Context
from treadle.api.models.schedules import PauseRequest
from treadle.api.routes import schedules as schedules_api
from treadle.api.routes import workflows as workflows_api
from treadle.api.ui.auth import UiUser, User, posted_form
from treadle.api.ui.editor import Editor, editor_text, publish_refusal
from treadle.api.ui.html_route import HtmlRoute
from treadle.api.ui.layout import page
from treadle.api.ui.schema_form import FormField, form_fields, parameters_schema
from treadle.clientlib.definition_views import describe_workflow, diff_versions
from treadle.common.access import Principal, Role
from treadle.common.errors import NotFound

__all__ = ["render_workflow_page", "router", "start_fields"]

router = APIRouter(prefix="/ui", route_class=HtmlRoute, include_in_schema=False)

Text = Annotated[str | None, Query(max_length=500)]
Version = Annotated[int | None, Query(ge=1, le=1_000_000)]


def start_fields(context: ApiContext, principal: Principal, ref: str) -> list[FormField] | None:
    """The start form of ``ref``'s latest version (None: a JSON text area)."""
    with context.reading() as uow:
        detail = describe_workflow(uow, ref, workspace=principal.workspace)
    return form_fields(parameters_schema(detail.summary.spec.parameters))


@router.get("/workflows", name="ui_workflows")
def workflows_page(request: Request, user: User, context: Context, cursor: Text = None) -> Response:
    """The published workflows."""
    listed = workflows_api.list_all(
        principal=user.principal,
        context=context,
        v1=False,
        pack=None,
        tag=None,
        limit=50,
        cursor=cursor or None,
    )
    return page(
        request,
        context,
        user,
        "workflows.html",
        workflows=[item.model_dump(mode="json") for item in listed.items],
        next_cursor=listed.next_cursor,
    )


def render_workflow_page(
    request: Request,
    context: ApiContext,
    user: UiUser,
    ref: str,
    *,
    version: int | None = None,
    status: int = 200,
    editor: Editor | None = None,
    notice: tuple[str, int] | None = None,
) -> Response:
    """The workflow's page; for admins with the YAML editor (``editor``: as the last press
    of one of its buttons left it, else the shown version's text)."""
    workspace = user.principal.workspace
    refusal = None
    with context.reading() as uow:
        detail = describe_workflow(uow, ref, version, workspace=workspace)
        if user.can(Role.ADMIN):
            refusal = publish_refusal(uow, ref, workspace)
            if editor is None:
                editor = Editor(editor_text(uow, ref, detail.shown_version, workspace))
    schema = parameters_schema(detail.summary.spec.parameters)
    return page(
        request,
        context,
        user,
        "workflow.html",
        status=status,
        ref=ref,
        detail=detail,
        start_schema=schema,
        start_form=form_fields(schema),
        editor=editor,
        refusal=refusal,
        notice=notice,
    )


@router.get("/workflows/{ref}", name="ui_workflow")
def workflow_page(
    *,
    request: Request,
    ref: str,
    user: User,
    context: Context,
    version: Version = None,
    published: Version = None,
    unchanged: Version = None,
) -> Response:
    """One workflow: versions, definition, the start form and the editor. After the
    editor published, ``published`` (a new version) or ``unchanged`` names the version."""
    notice = None
    if published is not None:
        notice = ("published", published)
    elif unchanged is not None:
        notice = ("unchanged", unchanged)
    return render_workflow_page(request, context, user, ref, version=version, notice=notice)


@router.get("/workflows/{ref}/diff", name="ui_workflow_diff")
def workflow_diff(
    *,
    request: Request,
    ref: str,
    user: User,
    context: Context,
    from_version: Annotated[int | None, Query(alias="from", ge=1, le=1_000_000)] = None,
    to_version: Annotated[int | None, Query(alias="to", ge=1, le=1_000_000)] = None,
) -> Response:
    """A unified diff of two versions, the lines coloured (and marked) by what changed."""
    with context.reading() as uow:
        diff = diff_versions(uow, ref, from_version, to_version, workspace=user.principal.workspace)
    return page(request, context, user, "diff.html", ref=ref, diff=diff)


@router.get("/events", name="ui_events")
def events_page(request: Request, user: User, context: Context) -> Response:
    """The form to send an outside event (operators)."""
    user.need(Role.OPERATOR)
    return page(request, context, user, "events.html")


@router.get("/schedules", name="ui_schedules")
def schedules_page(request: Request, user: User, context: Context) -> Response:
    """The workspace's schedules with their next fires (admins)."""
    user.need(Role.ADMIN)
    listed = schedules_api.list_schedules(user.principal, context)
    return page(
        request,
        context,
        user,
        "schedules.html",
        schedules=[item.model_dump(mode="json") for item in listed.items],
    )


@router.get("/schedules/{name}", name="ui_schedule")
def schedule_page(request: Request, name: str, user: User, context: Context) -> Response:
    """One schedule, its counts by outcome, and its latest fires (admins)."""
    user.need(Role.ADMIN)
    shown = schedules_api.get_schedule(name, user.principal, context)
    fires = schedules_api.list_fires(name, user.principal, context, limit=100)
    return page(
        request,
        context,
        user,
        "schedule.html",
        schedule=shown.model_dump(mode="json"),
        fires=[fire.model_dump(mode="json") for fire in fires.items],
    )


@router.post("/schedules/{name}/{action}", name="ui_schedule_action")
async def schedule_action(
    request: Request, name: str, action: str, user: User, context: Context
) -> Response:
    """Pause, resume or trigger the schedule now (admins)."""
    form = await posted_form(request, user)
    user.need(Role.ADMIN)
    principal = user.principal
    if action == "pause":
        reason = form.get("reason", "").strip() or None
        await run_in_threadpool(
            schedules_api.pause_schedule, name, principal, context, PauseRequest(reason=reason)
        )
    elif action == "resume":
        await run_in_threadpool(schedules_api.resume_schedule, name, principal, context)
    elif action == "trigger":
        await run_in_threadpool(schedules_api.trigger_schedule, name, principal, context)
    else:
        raise NotFound(f"no schedule action '{action}' (pause, resume or trigger)")
    return RedirectResponse(f"/ui/schedules/{name}", status_code=303)
