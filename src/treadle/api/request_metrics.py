"""The API's own metrics: each request counted by route template, method and status code.

:class:`RequestMetrics` is a plain ASGI middleware around the whole app. It labels a
request with the *template* of the route that served it (``/api/v1/runs/{run_id}``, read
from the route Starlette matched), never the raw path, so label values stay bounded
whatever ids clients send; a request no route matched is ``route="unmatched"``. Each
request adds one to ``treadle_api_requests_total{route, method, code}`` and its seconds to
``treadle_api_request_seconds{route}``. The registry is the app's
(:attr:`~treadle.api.context.ApiContext.metrics`), served at ``/metrics``
(:mod:`treadle.api.routes.metrics`).
"""

from __future__ import annotations

import time
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from treadle.common.metrics import Metrics
from treadle.common.metrics_catalog import MetricSource

__all__ = ["UNMATCHED", "RequestMetrics", "api_metrics"]

#: The route label of a request no route matched (a 404 for an unknown path).
UNMATCHED = "unmatched"


def api_metrics() -> Metrics:
    """A new registry with the metrics an API process exports (its requests, and the runs
    its requests start and change)."""
    return Metrics([MetricSource.API, MetricSource.RUNS])


class RequestMetrics:
    """Counts and times every HTTP request (see the module docstring)."""

    def __init__(self, app: ASGIApp, metrics: Metrics) -> None:
        self.app = app
        self._requests = metrics.counter("treadle_api_requests")
        self._seconds = metrics.histogram("treadle_api_request_seconds")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        began = time.perf_counter()
        code = 500  # unless a response starts: an exception no handler answered

        async def sending(message: Message) -> None:
            nonlocal code
            if message["type"] == "http.response.start":
                code = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            route = route_template(scope)
            self._requests.labels(route, scope["method"], str(code)).inc()
            self._seconds.labels(route).observe(time.perf_counter() - began)


def route_template(scope: Scope) -> str:
    """The full path template of the route that served ``scope``, else :data:`UNMATCHED`.

    FastAPI (0.16x) keeps an included router's routes as they were declared (``/{run_id}``,
    without the router's prefix) in ``scope["route"]``; the route it selected, with its
    full template, is its effective route context in ``scope["fastapi"]``, which its own
    telemetry reads too. A plain Starlette route (the docs, the static files' mount) is
    ``scope["route"]`` itself. ``tests/api/test_metrics_route.py`` checks the templates.
    """
    selected: Any = scope.get("fastapi", {}).get("effective_route_context")
    path = getattr(getattr(selected, "starlette_route", None), "path_format", None)
    if path is None:
        path = getattr(selected, "path_format", None)
    if path is None:
        route: Any = scope.get("route")
        path = getattr(route, "path", None)
    return path if isinstance(path, str) and path.startswith("/") else UNMATCHED
