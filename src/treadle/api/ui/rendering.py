"""Turning templates into the UI's HTML answers, with the headers every page carries.

Templates live in ``treadle/api/ui/templates/`` (package data), rendered by one Jinja2
environment with autoescaping on. Every page has a strict Content-Security-Policy: scripts,
styles and images only from this server (``'self'``), no inline script, no framing, forms
posting only here; it is never cached (``no-store``), since it shows one person's view.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any, Final

from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse

import treadle
from treadle.api.ui.assets import asset_url

__all__ = ["PAGE_HEADERS", "duration_label", "environment", "render"]

#: Headers of every HTML answer (see the module docstring).
PAGE_HEADERS: Final = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def _pretty(value: Any) -> str:
    """A JSON value as indented text, for ``<pre>`` blocks."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


def _when(value: Any) -> str:
    """An ISO time shown to the second, in UTC ('' for none)."""
    if not value:
        return ""
    text = str(value).replace("T", " ")
    return text[:19] + " UTC" if len(text) >= 19 else text


#: A symbol beside each status, so that none is told by colour alone.
STATUS_ICONS: Final = {
    "pending": "…",
    "queued": "◷",
    "scheduled": "◷",
    "running": "▶",
    "waiting": "‖",
    "pausing": "‖",
    "paused": "‖",
    "succeeded": "✓",
    "failed": "✗",
    "timed_out": "⊗",
    "canceled": "⊘",
    "lost": "⚠",
    "skipped": "↷",
    "compensating": "↺",
    "compensated": "↺",
}


def duration_label(seconds: float) -> str:
    """``seconds`` as a person reads it: ``850 ms``, ``4.2 s``, ``3 min 5 s``, ``2 h 10 min``."""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60} s"
    return f"{whole // 3600} h {whole % 3600 // 60} min"


def _status_icon(status: Any) -> str:
    return STATUS_ICONS.get(str(status or ""), "○")


@cache
def environment() -> Environment:
    """The one Jinja2 environment of the UI's templates."""
    env = Environment(
        loader=PackageLoader("treadle.api.ui", "templates"),
        autoescape=select_autoescape(["html", "svg"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["pretty"] = _pretty
    env.filters["when"] = _when
    env.filters["status_icon"] = _status_icon
    env.filters["duration"] = duration_label
    env.globals["asset"] = asset_url
    env.globals["version"] = treadle.__version__
    return env


def render(request: Request, template: str, *, status: int = 200, **values: Any) -> HTMLResponse:
    """``template`` rendered with ``values`` (and the request), as a page."""
    html = environment().get_template(template).render(request=request, **values)
    return HTMLResponse(html, status_code=status, headers=PAGE_HEADERS)
