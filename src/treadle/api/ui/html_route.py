"""How the UI's routes fail: an HTML page with the right 4xx status, never a 500 for bad
input, and the login page for anyone not logged in.

The JSON API answers errors in its one JSON shape (``api/errors.py``); a person in a
browser needs a page instead. :class:`HtmlRoute` is the route class of every UI router: it
catches what a handler (or its parameters' validation) raises and answers

* Unauthenticated: a redirect (303) to ``/ui/login?next=<this page>``, or 401 for a
  script's request (``X-Treadle-Fetch``), which then reloads the page;
* another Treadle error: the error page with the status the JSON API would give it
  (403, 404, 409, 422, 429, 503), naming what went wrong;
* a query or path parameter that does not validate: 422, naming each;
* anything else is a bug: logged, and a 500 page saying so.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any, Final
from urllib.parse import quote

from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from treadle.api.errors import status_of
from treadle.api.ui.rendering import render
from treadle.common.errors import TreadleError, Unauthenticated

__all__ = ["FETCH_HEADER", "HtmlRoute", "error_page", "login_redirect"]

log = logging.getLogger("treadle.api")

#: The header the UI's script sends with its own requests.
FETCH_HEADER: Final = "X-Treadle-Fetch"

#: The error page's title for each error type of the JSON API (:func:`status_of`).
_TITLES: Final[dict[str, str]] = {
    "forbidden": "Not allowed",
    "too_many_requests": "Too many requests",
    "not_found": "Not found",
    "conflict": "Not possible now",
    "sandbox_violation": "Invalid input",
    "invalid_parameters": "Invalid input",
    "invalid_definition": "Invalid definition",
    "limit_exceeded": "Too large",
    "service_unavailable": "Unavailable",
}


def login_redirect(request: Request) -> Response:
    """To the login page, coming back here after (GET pages only)."""
    if request.headers.get(FETCH_HEADER):
        return Response("log in again", status_code=401, media_type="text/plain")
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    after = quote(target, safe="") if request.method == "GET" else ""
    location = "/ui/login" + (f"?next={after}" if after else "")
    return RedirectResponse(location, status_code=303)


def error_page(request: Request, status: int, title: str, message: str) -> Response:
    """The error page: what went wrong, and a way back."""
    return render(request, "error.html", status=status, title=title, message=message)


def _treadle_error(request: Request, exc: TreadleError) -> Response:
    if isinstance(exc, Unauthenticated):
        return login_redirect(request)
    found = status_of(exc)  # the status the JSON API gives it
    if found is not None:
        status, type_ = found
        return error_page(request, status, _TITLES.get(type_, "Error"), str(exc))
    log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
    return error_page(request, 500, "Server error", "the server failed; see its log")


def _validation_error(request: Request, exc: RequestValidationError) -> Response:
    problems = [
        f"{'.'.join(str(part) for part in error.get('loc', ()))}: {error.get('msg', '')}"
        for error in exc.errors()
    ]
    return error_page(request, 422, "Invalid request", "; ".join(problems))


class HtmlRoute(APIRoute):
    """A UI route: errors become pages (see the module docstring)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await handle(request)
            except TreadleError as exc:
                return _treadle_error(request, exc)
            except RequestValidationError as exc:
                return _validation_error(request, exc)

        return handler
