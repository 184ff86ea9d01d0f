"""What every request of one API app reaches: its settings, store, clock and definitions.

An app keeps one :class:`ApiContext` in ``app.state.context`` and its dependencies read it
from the request, never from a module global: tests build as many apps as they like, each
on its own database, and ``uvicorn --factory`` builds one per worker process.

All database work of the routes goes through :meth:`ApiContext.reading` (one read-only
snapshot: a busy run never fails a read, and nothing retries) or
:meth:`ApiContext.writing` (one transaction). Both turn a database that cannot be reached
into ``ServiceUnavailable`` (503) and check once that the schema is Treadle's, as the
client does: the API never migrates a database behind its operators' backs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated

from fastapi import Depends, Request

from treadle.api.rate_limit import RateLimit
from treadle.api.token_cache import TokenCache
from treadle.clientlib.connection import check_schema, reaching
from treadle.clientlib.starting import run_starter
from treadle.common.catalog import Catalog
from treadle.common.metrics import Metrics
from treadle.common.metrics_catalog import MetricSource
from treadle.common.settings import Settings
from treadle.scheduler.service.definitions import Definitions
from treadle.scheduler.service.run_metrics import RunMetrics
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.service.starting import RunStarter
from treadle.scheduler.service.triggers import TriggerIndex
from treadle.scheduler.store import Store, UnitOfWork

__all__ = ["ApiContext", "Context", "api_context"]


class ApiContext:
    """The store, settings and clock of one app, shared by its requests (thread-safe)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        clock: Callable[[], datetime],
        metrics: Metrics | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.clock = clock
        self.definitions = Definitions(store, Catalog())
        #: This process's metrics (``GET /metrics``): its requests and the runs they change.
        self.metrics = metrics or Metrics([MetricSource.API, MetricSource.RUNS])
        self._run_metrics = RunMetrics(self.metrics, self.definitions)
        #: The event triggers in force, cached per definition version (``POST /events``).
        self.triggers = TriggerIndex()
        self.rate_limit = RateLimit(settings.api_rate_limit_per_minute)
        #: The tokens verified lately (``api/token_cache.py``).
        self.tokens = TokenCache(settings.api_token_cache_seconds)
        self._schema_checked = False
        self._lock = threading.Lock()

    @contextmanager
    def reaching(self) -> Iterator[None]:
        """The database reachable (else ServiceUnavailable), its schema checked once."""
        with reaching(self.store):
            if not self._schema_checked:
                with self._lock:
                    if not self._schema_checked:
                        check_schema(self.store)
                        self._schema_checked = True
            yield

    @contextmanager
    def reading(self) -> Iterator[UnitOfWork]:
        """One read-only snapshot of the database."""
        with self.reaching(), self.store.snapshot() as uow:
            yield uow

    @contextmanager
    def writing(self) -> Iterator[UnitOfWork]:
        """One transaction: committed when the block ends, rolled back if it raises."""
        with self.reaching(), self.store.unit_of_work() as uow:
            yield uow

    def run_starter(self) -> RunStarter:
        """A new starter and run service for one request (its cache of run states is not
        shared), counting what it saves in :attr:`metrics`."""
        starter = run_starter(self.store, self.definitions, self.settings, clock=self.clock)
        starter.runs.observers.append(self._run_metrics)
        return starter

    def run_service(self) -> RunService:
        """A new run service for one request (its cache of run states is not shared)."""
        return self.run_starter().runs


async def api_context(request: Request) -> ApiContext:
    """The context of the app serving ``request`` (async: no thread for a lookup)."""
    context = request.app.state.context
    if not isinstance(context, ApiContext):  # pragma: no cover - create_app always sets it
        raise TypeError("app.state.context is not an ApiContext: build the app with create_app")
    return context


#: A route parameter receiving the app's context.
Context = Annotated[ApiContext, Depends(api_context)]
