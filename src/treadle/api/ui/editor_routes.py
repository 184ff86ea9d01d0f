"""The YAML editor's forms: validate a definition, or publish it as the next version.

On a workflow's page (``POST /ui/workflows/{ref}/definition``) and as "New workflow"
(``GET``/``POST /ui/workflows/new``), for admins: publishing is the admin's in the JSON
API (``PUT /api/v1/workflows/{ref}``, ``POST /api/v1/workflows``), and the editor exists to
publish. Each press of a button is a plain form ``POST`` (the page works without its
script) carrying the session's CSRF token, and calls the JSON API's own handlers with the
user's principal, so a definition is read, checked, published and audited
(``workflow.publish``) exactly as there:

* **Validate**: ``POST /workflows/{ref}/validate`` (``/workflows/validate`` for a new one).
  The page comes back with the text as sent and its problems at their lines (422), or
  "valid" with any warnings (200); nothing is stored.
* **Publish**: ``PUT /workflows/{ref}`` (``POST /workflows`` for a new one). A definition
  with an error is not published: the page comes back with the problems (422). A refusal
  (a pack defines the workflow, or it is shared by every workspace) comes back too (409),
  the text kept. Published (or unchanged), the browser goes (303) to the workflow's page,
  which says which version it is and links its diff from the one before.
"""

from __future__ import annotations

import json
from typing import Final

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import RedirectResponse, Response

from treadle.api.context import ApiContext, Context
from treadle.api.definitions_http import DefinitionBody
from treadle.api.routes import workflow_changes
from treadle.api.ui.auth import UiUser, User, posted_form
from treadle.api.ui.catalog_routes import render_workflow_page
from treadle.api.ui.editor import (
    NEW_WORKFLOW,
    Editor,
    EditorAction,
    Outcome,
    problems_of,
    warnings_of,
)
from treadle.api.ui.html_route import HtmlRoute
from treadle.api.ui.layout import page
from treadle.common.access import Role
from treadle.common.errors import ConflictError, DefinitionError, ParameterError

__all__ = ["router"]

router = APIRouter(prefix="/ui", route_class=HtmlRoute, include_in_schema=False)

#: The form field holding the definition's text.
TEXT_FIELD: Final = "yaml"


def _read(form: dict[str, str]) -> tuple[EditorAction, str]:
    """The button pressed and the text (its line ends as the browser sent them, CRLF, made
    plain newlines); ParameterError (422) for a button the editor does not have."""
    pressed = form.get("action", "")
    try:
        action = EditorAction(pressed)
    except ValueError:
        raise ParameterError(
            [f"'action' must be 'validate' or 'publish', not {pressed[:40]!r}"], subject="form"
        ) from None
    return action, form.get(TEXT_FIELD, "").replace("\r\n", "\n")


def _check(context: ApiContext, user: UiUser, ref: str | None, text: str) -> Editor:
    """Validate ``text`` as the JSON API does (its handler): valid, or its problems."""
    body = DefinitionBody(text, is_json=False)
    try:
        if ref is None:
            result = workflow_changes.validate(user.principal, context, body)
        else:
            result = workflow_changes.validate_ref(ref, user.principal, context, body)
    except DefinitionError as exc:
        return Editor(text, problems_of(text, exc.issues), Outcome.INVALID)
    return Editor(text, warnings_of(text, result.warnings), Outcome.VALID, result.ref)


def _publish(
    context: ApiContext, user: UiUser, ref: str | None, text: str
) -> Editor | RedirectResponse:
    """Publish ``text`` as the JSON API does (its handler): to the workflow's page, or
    the editor again with the problems or the refusal."""
    body = DefinitionBody(text, is_json=False)
    try:
        if ref is None:
            answer = workflow_changes.create(user.principal, context, body)
        else:
            answer = workflow_changes.update(ref, user.principal, context, body)
    except DefinitionError as exc:
        return Editor(text, problems_of(text, exc.issues), Outcome.INVALID)
    except ConflictError as exc:
        return Editor(text, (), Outcome.REFUSED, str(exc))
    published = json.loads(bytes(answer.body))
    shown = "published" if published["new"] else "unchanged"
    # its own fragment: the browser would keep the form's (#editor-outcome) otherwise
    location = f"/ui/workflows/{published['ref']}?{shown}={published['version']}#notice"
    return RedirectResponse(location, status_code=303)


def _status(editor: Editor) -> int:
    return {Outcome.INVALID: 422, Outcome.REFUSED: 409}.get(editor.outcome or Outcome.VALID, 200)


@router.get("/workflows/new", name="ui_new_workflow")
def new_workflow(request: Request, user: User, context: Context) -> Response:
    """The editor for a new workflow (admins)."""
    user.need(Role.ADMIN)
    return page(request, context, user, "workflow_new.html", editor=Editor(NEW_WORKFLOW))


@router.post("/workflows/new", name="ui_new_workflow_post")
async def new_workflow_post(request: Request, user: User, context: Context) -> Response:
    """Validate or publish a new workflow's definition (admins)."""
    editor = await _press(request, user, context, None)
    if isinstance(editor, RedirectResponse):
        return editor
    return await run_in_threadpool(
        page, request, context, user, "workflow_new.html", status=_status(editor), editor=editor
    )


@router.post("/workflows/{ref}/definition", name="ui_edit_workflow")
async def edit_workflow(request: Request, ref: str, user: User, context: Context) -> Response:
    """Validate or publish the workflow's definition as edited (admins)."""
    editor = await _press(request, user, context, ref)
    if isinstance(editor, RedirectResponse):
        return editor
    return await run_in_threadpool(
        render_workflow_page, request, context, user, ref, status=_status(editor), editor=editor
    )


async def _press(
    request: Request, user: UiUser, context: ApiContext, ref: str | None
) -> Editor | RedirectResponse:
    """The editor's form as Validate or Publish leaves it (CSRF and the admin role first),
    or where a publish goes on to."""
    form = await posted_form(request, user)
    user.need(Role.ADMIN)
    action, text = _read(form)
    if action is EditorAction.VALIDATE:
        return await run_in_threadpool(_check, context, user, ref, text)
    return await run_in_threadpool(_publish, context, user, ref, text)
