"""Logging in to the web UI with an API token, and logging out.

``GET /ui/login`` shows the form; ``POST /ui/login`` checks the token exactly as the JSON
API checks a bearer token and, if it is good, seals it in the session cookie
(:mod:`.sessions`) and goes on to the page asked for (``next``, a path of the UI only, so
the login page redirects nowhere else). The form is guarded by a random value kept in a
short-lived ``SameSite=Strict`` cookie and echoed in the form (a double submit): another
site cannot log a browser in. ``POST /ui/logout`` (with the session's CSRF token) deletes
the cookie. A bad token answers the form again, 401, saying only that the token is not
valid, and is never echoed.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Annotated
from urllib.parse import parse_qs

from fastapi import APIRouter, Query, Request
from fastapi.security import HTTPAuthorizationCredentials
from starlette.responses import RedirectResponse, Response

from treadle.api.context import Context
from treadle.api.security import current_principal
from treadle.api.ui.auth import MAX_FORM_BYTES, User, posted_form
from treadle.api.ui.html_route import HtmlRoute
from treadle.api.ui.rendering import render
from treadle.api.ui.sessions import (
    LOGIN_COOKIE,
    SESSION_COOKIE,
    SESSION_SECONDS,
    Session,
    seal_session,
    set_cookie,
)
from treadle.common.errors import TooManyRequests, Unauthenticated

__all__ = ["router", "safe_next"]

router = APIRouter(prefix="/ui", route_class=HtmlRoute, include_in_schema=False)

HOME = "/ui/runs"


def safe_next(target: str | None) -> str:
    """Where to go after logging in: a UI path, else the runs."""
    if not target or not target.startswith("/ui/") or target.startswith("/ui/login"):
        return HOME
    if "//" in target or "\\" in target or any(ord(c) < 32 for c in target):
        return HOME
    return target


def _form(request: Request, *, status: int, error: str | None, next_page: str) -> Response:
    guard = secrets.token_urlsafe(24)
    response = render(
        request, "login.html", status=status, error=error, guard=guard, next_page=next_page
    )
    set_cookie(response, request, LOGIN_COOKIE, guard, max_age=3600, path="/ui/login")
    return response


@router.get("/login", name="ui_login")
def login_form(
    request: Request, next_page: Annotated[str | None, Query(alias="next")] = None
) -> Response:
    """The login form."""
    return _form(request, status=200, error=None, next_page=safe_next(next_page))


@router.post("/login", name="ui_login_post")
async def log_in(request: Request, context: Context) -> Response:
    """Check the token and start a session (see the module docstring)."""
    body = await request.body()
    fields = parse_qs(body[:MAX_FORM_BYTES].decode("utf-8", "replace"), keep_blank_values=True)
    form = {name: values[-1] for name, values in fields.items()}
    next_page = safe_next(form.get("next"))
    guard = request.cookies.get(LOGIN_COOKIE, "")
    if not guard or not hmac.compare_digest(guard.encode(), form.get("guard", "").encode()):
        return _form(
            request,
            status=403,
            error="The login form expired or came from another page: try again.",
            next_page=next_page,
        )
    token = form.get("token", "").strip()
    try:
        if not token:
            raise Unauthenticated("no token")
        await current_principal(
            context, HTTPAuthorizationCredentials(scheme="Bearer", credentials=token)
        )
    except Unauthenticated:
        return _form(
            request,
            status=401,
            error="That token is not valid (unknown, expired or revoked).",
            next_page=next_page,
        )
    except TooManyRequests:
        return _form(
            request, status=429, error="Too many requests: wait a minute.", next_page=next_page
        )
    sealed = seal_session(context.store, Session.new(token, context.clock()))
    response = RedirectResponse(next_page, status_code=303)
    set_cookie(response, request, SESSION_COOKIE, sealed, max_age=SESSION_SECONDS, path="/")
    response.delete_cookie(LOGIN_COOKIE, path="/ui/login")
    return response


@router.post("/logout", name="ui_logout")
async def log_out(request: Request, user: User) -> Response:
    """End the session: the cookie is deleted."""
    await posted_form(request, user)
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response
