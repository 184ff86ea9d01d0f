"""The web UI ``treadle api`` serves at ``/``: runs, DAGs, approvals, workflows and
schedules, as HTML the server renders (Jinja2), with one small script for live updates.

Every page, script and stylesheet is package data of this folder (``templates/``,
``static/``); nothing is loaded from anywhere else. A person logs in with an API token
(:mod:`.login_routes`, :mod:`.sessions`), and every page and change goes through the
JSON API's own checks, handlers and services with that token's principal (:mod:`.auth`),
so the UI can show and do exactly what the token may. See ``docs/ui.md``.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI, Request
from starlette.responses import RedirectResponse, Response

from treadle.api.ui import action_routes, catalog_routes, editor_routes, login_routes, run_routes
from treadle.api.ui.assets import serve_asset
from treadle.api.ui.html_route import HtmlRoute

__all__ = ["install_ui"]

_entry = APIRouter(route_class=HtmlRoute, include_in_schema=False)


@_entry.get("/", name="ui_root")
def root() -> Response:
    """``/`` is the UI's runs list (the login page first, without a session)."""
    return RedirectResponse("/ui/runs", status_code=303)


@_entry.get("/ui/static/{name}", name="ui_static")
def static(request: Request, name: str) -> Response:
    """A packaged asset, with its content type and cache headers."""
    return serve_asset(request, name)


def install_ui(app: FastAPI) -> None:
    """Serve the web UI from ``app``."""
    app.include_router(_entry)
    app.include_router(login_routes.router)
    app.include_router(run_routes.router)
    app.include_router(action_routes.router)
    app.include_router(editor_routes.router)  # before /ui/workflows/{ref}: it has /new
    app.include_router(catalog_routes.router)
