"""``GET /metrics``: this API process's metrics, in Prometheus's text format.

Behind a token like every route but the health checks: Prometheus scrapes it with
``authorization: {type: Bearer, credentials_file: ...}`` holding a viewer token. It serves
the process's own registry (:attr:`~treadle.api.context.ApiContext.metrics`): its requests
(``treadle_api_*``) and the runs its requests started or changed (``treadle_runs_*``). With
``treadle api --workers N`` each worker process counts its own; scrape each, or run one.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from treadle.api.context import Context
from treadle.api.errors import ERROR_RESPONSES
from treadle.api.security import Viewer

__all__ = ["PATH", "include", "router"]

#: Where the route is served (Prometheus's default ``metrics_path``).
PATH = "/metrics"

router = APIRouter(responses=ERROR_RESPONSES)


@router.get(
    PATH,
    summary="This process's Prometheus metrics",
    name="get_metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}, "description": "The metrics."}},
)
async def get_metrics(_principal: Viewer, context: Context) -> Response:
    """Every metric this API process exports, in Prometheus's text format (version 0.0.4).
    Any role may read it."""
    return Response(generate_latest(context.metrics.registry), media_type=CONTENT_TYPE_LATEST)


def include(app: FastAPI) -> None:
    app.include_router(router, tags=["metrics"], generate_unique_id_function=lambda r: r.name)
