"""What the UI's buttons and forms do to runs: control one, retry one from a failed task,
answer its inquiry, send an event, start one; and the admins' emergency-stop switch.

Every route here is a ``POST`` of a form that carries the session's CSRF token
(:func:`~treadle.api.ui.auth.posted_form` checks it first) and needs a role, checked here
whether or not the page showed the control (:meth:`~treadle.api.ui.auth.UiUser.need`).
What each does is the JSON API's own: the same services, in one audited transaction
(``run.cancel``, ``inquiry.respond``, ``event.send``, ``run.start``,
``emergency_stop.on``...), by the same actor (``token:<name>``). Success redirects (303)
to the page to look at; a refusal is a 4xx page naming why (:mod:`.html_route`), and an
answer that does not fit its inquiry's schema shows the run's page again with each
problem, 422.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from treadle.api.audit import audited
from treadle.api.context import ApiContext, Context
from treadle.api.models.emergency_stop import StopOff, StopOn
from treadle.api.models.events import EventRequest
from treadle.api.models.workflows import ExecuteRequest
from treadle.api.routes import emergency_stop as stops_api
from treadle.api.routes import events as events_api
from treadle.api.routes import inquiries as inquiries_api
from treadle.api.routes import workflow_changes as workflows_api
from treadle.api.ui.auth import UiUser, User, posted_form
from treadle.api.ui.catalog_routes import start_fields
from treadle.api.ui.html_route import HtmlRoute
from treadle.api.ui.layout import page
from treadle.api.ui.login_routes import safe_next
from treadle.api.ui.run_routes import render_run_page
from treadle.api.ui.schema_form import JSON_FIELD, form_fields, form_value
from treadle.api.workspaces import run_scope
from treadle.clientlib.changes import control_details
from treadle.common.access import Role
from treadle.common.errors import NotFound, ParameterError
from treadle.scheduler.service.controls import Control, apply_control_in

__all__ = ["router"]

router = APIRouter(prefix="/ui", route_class=HtmlRoute, include_in_schema=False)


def _back(location: str) -> Response:
    return RedirectResponse(location, status_code=303)


@router.post("/runs/{run_id}/control/{control}", name="ui_control_run")
async def control_run(
    request: Request, run_id: str, control: Control, user: User, context: Context
) -> Response:
    """Pause, resume, cancel, retry or compensate the run (operator)."""
    await _apply_control(request, user, context, run_id, control)
    return _back(f"/ui/runs/{run_id}")


@router.post("/runs/{run_id}/tasks/{task}/retry", name="ui_retry_task")
async def retry_task(
    request: Request, run_id: str, task: str, user: User, context: Context
) -> Response:
    """Retry the ended run from one failed task: "Retry from this task" (operator)."""
    await _apply_control(request, user, context, run_id, Control.RETRY, task=task)
    return _back(f"/ui/runs/{run_id}?task={quote(task, safe='')}#task")


async def _apply_control(
    request: Request,
    user: UiUser,
    context: ApiContext,
    run_id: str,
    control: Control,
    *,
    task: str | None = None,
) -> None:
    """Apply a control posted from a run's page (CSRF and the operator role first), in one
    audited transaction (``run.<control>``, its reason and task in the details)."""
    form = await posted_form(request, user)
    user.need(Role.OPERATOR)
    reason = form.get("reason", "").strip() or None
    principal = user.principal

    def apply() -> None:
        runs = context.run_service()
        details = control_details(reason, task=task)
        with audited(context, principal, f"run.{control.value}", run_id, details) as uow:
            run_scope(principal).check(uow, run_id)
            apply_control_in(
                uow, runs, run_id, control, reason=reason, by=principal.actor, task=task
            )

    await run_in_threadpool(apply)


@router.post("/runs/{run_id}/inquiries/{inquiry_id}", name="ui_answer_inquiry")
async def answer_inquiry(
    request: Request, run_id: str, inquiry_id: str, user: User, context: Context
) -> Response:
    """Answer the run's pending inquiry from its form (operator)."""
    form = await posted_form(request, user)
    user.need(Role.OPERATOR)

    def answer() -> Response:
        with context.reading() as uow:
            entry = uow.get_inquiry(inquiry_id)
            run_scope(user.principal).check(uow, entry.run_id)
        if entry.run_id != run_id:
            raise NotFound(f"run {run_id} has no inquiry {inquiry_id}")
        fields = form_fields(entry.schema) if form.get("mode") != JSON_FIELD else None
        try:
            value = form_value(fields, form)
            inquiries_api.respond(inquiry_id, user.principal, context, value)
        except ParameterError as exc:
            problems = list(exc.problems) or [str(exc)]
            return render_run_page(
                request,
                context,
                user,
                run_id,
                status=422,
                answer_errors={inquiry_id: problems},
                answer_given={inquiry_id: form},
            )
        return _back(f"/ui/runs/{run_id}")

    return await run_in_threadpool(answer)


def _json_field(form: dict[str, str], name: str) -> Any:
    text = form.get(name, "").strip()
    if not text:
        return None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ParameterError(
            [f"'{name}' is not valid JSON (line {exc.lineno}, column {exc.colno}): {exc.msg}"]
        ) from None


@router.post("/events", name="ui_send_event")
async def send_event(request: Request, user: User, context: Context) -> Response:
    """Send an outside event (operator); shows what it started and moved on."""
    form = await posted_form(request, user)
    user.need(Role.OPERATOR)
    body = EventRequest(
        type=form.get("type", "").strip(),
        subject=form.get("subject", "").strip() or None,
        data=_json_field(form, "data"),
    )
    outcome = await run_in_threadpool(events_api.send_event, body, user.principal, context)
    return await run_in_threadpool(
        page, request, context, user, "event_sent.html", outcome=outcome.model_dump(mode="json")
    )


@router.post("/workflows/{ref}/start", name="ui_start_run")
async def start_run(request: Request, ref: str, user: User, context: Context) -> Response:
    """Start a run of the workflow's latest version with the form's parameters (operator)."""
    form = await posted_form(request, user)
    user.need(Role.OPERATOR)
    fields = await run_in_threadpool(start_fields, context, user.principal, ref)
    value = form_value(fields if form.get("mode") != JSON_FIELD else None, form) or {}
    if not isinstance(value, dict):
        raise ParameterError(["the parameters must be a JSON object"])
    answer = await run_in_threadpool(
        workflows_api.execute, ref, user.principal, context, ExecuteRequest(parameters=value)
    )
    run_id = json.loads(bytes(answer.body))["id"]
    return _back(f"/ui/runs/{run_id}")


@router.post("/emergency-stop/{switch}", name="ui_emergency_stop")
async def emergency_stop(request: Request, switch: str, user: User, context: Context) -> Response:
    """Set (``on``) or lift (``off``) the workspace's emergency stop (admin)."""
    form = await posted_form(request, user)
    user.need(Role.ADMIN)
    reason = form.get("reason", "").strip()
    if switch == "on":
        if not reason:
            raise ParameterError(["say why you stop the runs (the reason is shown to all)"])
        await run_in_threadpool(stops_api.stop_on, StopOn(reason=reason), user.principal, context)
    elif switch == "off":
        await run_in_threadpool(
            stops_api.stop_off, StopOff(reason=reason or None), user.principal, context
        )
    else:
        raise NotFound(f"no emergency-stop switch '{switch}' (on or off)")
    return _back(safe_next(form.get("back")))
