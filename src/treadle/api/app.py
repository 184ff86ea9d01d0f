"""Building the HTTP API app: ``create_app(settings)``, and the factory ``treadle api`` serves.

There is no app at import time: :func:`create_app` builds one from its settings (and, in
tests, a store and a clock of the caller's), so every test and every uvicorn worker process
has its own. ``uvicorn --factory treadle.api.app:app_from_environment`` (what
``treadle api --workers N`` runs) builds one per worker from the ``TREADLE_*`` variables.

The app answers ``/healthz`` and ``/readyz``, the OpenAPI document at
``/api/v1/openapi.json``, the docs at ``/api/docs`` (assets under ``/api/static/``) and
the routes under ``/api/v1``, which need a bearer token, and the web UI at ``/`` (``ui/``,
logged in with a token; ``docs/ui.md``). See ``docs/api.md``.

Given a :class:`~treadle.embedded.background.BackgroundScheduler` (``treadle api`` on
SQLite), the app starts it when it starts, wakes it with every change a request commits,
and closes it when it shuts down: one process serves the API and moves the runs on.

The app's :class:`~treadle.api.run_changes.RunChanges` (``app.state.run_changes``) wakes
the web UI's live streams when their runs change; it is opened with the app and closed
(its LISTEN thread and connection ended) when the app shuts down.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import anyio.to_thread
from fastapi import FastAPI

import treadle
from treadle.api.context import ApiContext
from treadle.api.docs import OPENAPI_PATH, install_docs
from treadle.api.errors import install_error_handlers
from treadle.api.request_metrics import RequestMetrics
from treadle.api.routes import (
    audit,
    emergency_stop,
    events,
    golden,
    health,
    inquiries,
    kv,
    packs,
    rules,
    run_views,
    runs,
    sandbox,
    schedules,
    webhooks,
    workflows,
)
from treadle.api.routes import metrics as metrics_route
from treadle.api.run_changes import RunChanges
from treadle.api.ui import install_ui
from treadle.clientlib.connection import open_client_store
from treadle.common.metrics import Metrics
from treadle.common.settings import Settings, settings_from_environment
from treadle.scheduler.store import Store

if TYPE_CHECKING:  # only ``treadle api`` on SQLite builds one
    from treadle.embedded.background import BackgroundScheduler

__all__ = ["CONNECT_TIMEOUT", "THREADS", "app_from_environment", "create_app"]

#: Seconds a request waits for a database connection before answering 503.
CONNECT_TIMEOUT = 5.0

#: Threads running the routes' database work, per process: as many as the store's pool
#: has connections (SQLAlchemy's 5, and 10 more when busy). More threads would only wait
#: for a connection, and contend for the interpreter with the event loop meanwhile.
THREADS = 15

TITLE = "Treadle API"

DESCRIPTION = """\
Read and control Treadle's workflow runs over HTTP.

Every route under `/api/v1` needs an API token: `Authorization: Bearer trd_...`.
Viewers read; operators and admins also control runs. Every error answers
`{"error": {"type", "message", "details"}}`. Guide: `docs/api.md`.
"""


def _utc_now() -> datetime:
    return datetime.now(UTC)


def create_app(
    settings: Settings,
    *,
    store: Store | None = None,
    clock: Callable[[], datetime] | None = None,
    embedded: BackgroundScheduler | None = None,
    metrics: Metrics | None = None,
) -> FastAPI:
    """The API app on ``store`` (default: ``settings.database_url``, opened lazily with a
    bounded connection time and never migrated; closed when the app shuts down).

    ``clock`` (default: the system clock in UTC) dates authentication and audit entries.
    ``embedded``: the scheduler and worker pool this process also runs (``treadle api``
    on SQLite), started with the app, woken by the changes requests commit on ``store``,
    and closed (the app owns it) when the app shuts down. When it starts, the app limits
    its event loop's thread pool (anyio's default limiter) to :data:`THREADS`.
    ``metrics``: where the app counts its requests and the runs they change (default: a
    registry of its own), served at ``GET /metrics``.
    """
    owned = store is None
    opened = open_client_store(settings.database_url, CONNECT_TIMEOUT) if store is None else store
    if settings.lifecycle_events:  # every change writes its events (lifecycle-events.md)
        opened.lifecycle_events = True
    opened.run_change_notices = settings.run_change_notices
    opened.prepared_statements = settings.prepared_statements

    changes = RunChanges.for_app(opened, embedded.runner.store if embedded else None)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        anyio.to_thread.current_default_thread_limiter().total_tokens = THREADS
        try:
            changes.open()
            if embedded is not None:
                embedded.watch(opened.engine)
                embedded.start()
            yield
        finally:
            changes.close()  # ends the LISTEN thread and its connection
            if embedded is not None:
                embedded.close()  # waits for the actions still running
            if owned:
                opened.close()

    app = FastAPI(
        title=TITLE,
        version=treadle.__version__,
        description=DESCRIPTION,
        openapi_url=OPENAPI_PATH,
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    context = ApiContext(settings, opened, clock or _utc_now, metrics)
    app.state.context = context
    app.state.run_changes = changes  # the live streams' wake-ups (docs/ui.md)
    app.add_middleware(RequestMetrics, metrics=context.metrics)
    install_error_handlers(app)
    install_docs(app, title=TITLE)
    app.include_router(health.router)
    runs.include(app)
    workflows.include(app)
    packs.include(app)
    run_views.include(app)
    inquiries.include(app)
    events.include(app)
    kv.include(app)
    webhooks.include(app)
    schedules.include(app)
    rules.include(app)
    audit.include(app)
    metrics_route.include(app)
    sandbox.include(app)
    emergency_stop.include(app)
    golden.include(app)  # golden records and replays (docs/api.md)
    install_ui(app)  # the web UI at / (docs/ui.md)
    return app


def app_from_environment() -> FastAPI:
    """The app the ``TREADLE_*`` variables describe (``uvicorn --factory``); logs go to
    stderr at ``TREADLE_LOG_LEVEL`` unless logging is configured already."""
    settings = settings_from_environment()
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    return create_app(settings)
