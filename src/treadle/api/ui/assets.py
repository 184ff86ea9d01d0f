"""The web UI's static files: package data served by the app itself, never a CDN.

Every asset (the stylesheet, the script, the icon) lives in ``treadle/api/ui/static/`` and
is read once. Pages link each as ``/ui/static/<name>?v=<hash of its content>``: an answer
to a URL carrying the current hash may be cached for a year (``immutable``), since a new
release changes the hash; anything else is ``no-cache`` with an ``ETag``, so a browser
asks again. Content types are fixed per suffix, with ``nosniff``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from treadle.common.errors import NotFound

__all__ = ["Asset", "asset", "asset_url", "serve_asset"]

_TYPES: Final = {
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
#: Where the assets are served.
STATIC_PATH: Final = "/ui/static"


@dataclass(frozen=True)
class Asset:
    """One file of ``static/``: its bytes, content type and content hash."""

    body: bytes
    media_type: str
    version: str


@cache
def asset(name: str) -> Asset:
    """The asset ``name`` (NotFound for a name that is not one of ours)."""
    suffix = name[name.rfind(".") :] if "." in name else ""
    if "/" in name or "\\" in name or suffix not in _TYPES:
        raise NotFound(f"no asset {name}")
    source = resources.files("treadle.api.ui").joinpath("static", name)
    if not source.is_file():
        raise NotFound(f"no asset {name}")
    body = source.read_bytes()
    return Asset(body, _TYPES[suffix], hashlib.sha256(body).hexdigest()[:16])


def asset_url(name: str) -> str:
    """The URL pages link ``name`` with: its path and the hash of its content."""
    return f"{STATIC_PATH}/{name}?v={asset(name).version}"


def serve_asset(request: Request, name: str) -> Response:
    """``name`` with its content type and cache headers (see the module docstring)."""
    found = asset(name)
    etag = f'"{found.version}"'
    if request.query_params.get("v") == found.version:
        cache_control = "public, max-age=31536000, immutable"
    else:
        cache_control = "no-cache"
    headers = {
        "Cache-Control": cache_control,
        "ETag": etag,
        "X-Content-Type-Options": "nosniff",
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(found.body, media_type=found.media_type, headers=headers)
