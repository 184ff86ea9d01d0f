"""The interactive API docs, served with Swagger UI files from an installed package.

FastAPI's default docs page loads Swagger UI from a CDN, which fails on a machine without
internet access and leaks who reads the docs. Here ``/api/docs`` is FastAPI's Swagger UI
page pointed at ``/api/static/``, where the files shipped in the ``fastapi-offline``
package are served ("Self-hosting JavaScript and CSS for docs" in FastAPI's docs).

Why that package: it ships Swagger UI 5, which renders the OpenAPI 3.1 document FastAPI
writes; ``swagger-ui-bundle`` (1.1.0, the latest) ships Swagger UI 4.15, which refuses any
document that is not OpenAPI 3.0 ("Unable to render this definition").
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["DOCS_PATH", "OPENAPI_PATH", "STATIC_PATH", "install_docs", "swagger_ui_files"]

#: Where the OpenAPI document, the docs page and its files are served.
OPENAPI_PATH = "/api/v1/openapi.json"
DOCS_PATH = "/api/docs"
STATIC_PATH = "/api/static"


def swagger_ui_files() -> Path:
    """The folder of Swagger UI's JavaScript, CSS and icon in the installed package."""
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def install_docs(app: FastAPI, *, title: str) -> None:
    """Serve the docs page at :data:`DOCS_PATH` and its files under :data:`STATIC_PATH`."""
    app.mount(STATIC_PATH, StaticFiles(directory=swagger_ui_files()), name="static")

    def docs_page() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=OPENAPI_PATH,
            title=f"{title} docs",
            swagger_js_url=f"{STATIC_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f"{STATIC_PATH}/swagger-ui.css",
            swagger_favicon_url=f"{STATIC_PATH}/favicon.png",
        )

    app.add_api_route(DOCS_PATH, docs_page, methods=["GET"], include_in_schema=False)
