"""Reaching the database and the broker at start-up: patiently, and saying why it waits.

Services are often started before (or together with) PostgreSQL and RabbitMQ, so an
unreachable database or broker is retried with capped exponential backoff (tenacity),
logging each reason: ``database at db:5432 unreachable: connection refused; retrying in 2 s``.
After ``give_up_after`` seconds the last error is raised as
:class:`~treadle.common.errors.ServiceUnavailable`; a stop request (SIGTERM while waiting)
ends the wait at once.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from kombu.connection import Connection
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, InterfaceError, OperationalError
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_any,
    stop_before_delay,
    stop_never,
    stop_when_event_set,
    wait_exponential,
)
from tenacity.stop import stop_base

from treadle.common.errors import ServiceUnavailable
from treadle.common.settings import SchemaUpgrade, Settings
from treadle.scheduler.service.schema_gate import await_current_schema
from treadle.scheduler.store import Store
from treadle.scheduler.store.base import utc_now

log = logging.getLogger("treadle.scheduler")

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait for a service: the first pause, the cap, and when to give up.

    Pauses double from ``first_wait`` up to ``max_wait`` seconds; ``give_up_after`` is
    the total budget in seconds (``None``: keep trying until stopped).
    """

    first_wait: float = 1.0
    max_wait: float = 30.0
    give_up_after: float | None = 300.0


def database_address(url: str) -> str:
    """``host:port`` of a database URL, for messages (no credentials)."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "<unparseable database URL>"
    if parsed.get_backend_name() == "sqlite":
        return parsed.database or ":memory:"
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}"


def broker_address(connection: Connection) -> str:
    """``host:port`` of a broker connection, for messages (no credentials)."""
    port = connection.port or getattr(connection.transport, "default_port", None)
    return f"{connection.hostname or 'localhost'}:{port}" if port else str(connection.hostname)


def _first_line(exc: BaseException) -> str:
    cause = getattr(exc, "orig", None) or exc
    text = str(cause).strip()
    return text.splitlines()[0] if text else type(cause).__name__


def _database_reason(exc: BaseException) -> str:
    # Store.open wraps the driver's OperationalError; its first line is the useful part.
    cause = exc.__cause__ if exc.__cause__ is not None else exc
    return _first_line(cause)


def retry_until_available(
    attempt: Callable[[], T],
    *,
    what: str,
    reason: Callable[[BaseException], str],
    retry_on: tuple[type[BaseException], ...],
    policy: RetryPolicy,
    stop: threading.Event | None = None,
) -> T:
    """Call ``attempt`` until it returns, retrying ``retry_on`` errors under ``policy``.

    Raises ServiceUnavailable (naming ``what`` and the last reason) when the budget is
    spent or ``stop`` is set.
    """
    stops: list[stop_base] = []
    if policy.give_up_after is not None:
        stops.append(stop_before_delay(policy.give_up_after))
    if stop is not None:
        stops.append(stop_when_event_set(stop))

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome is not None else None
        pause = state.next_action.sleep if state.next_action is not None else 0.0
        log.warning(
            "%s unreachable: %s; retrying in %g s",
            what,
            reason(error) if error is not None else "unknown error",
            round(pause, 1),
        )

    def pause(seconds: float) -> None:
        if stop is None:
            time.sleep(seconds)
        else:
            stop.wait(seconds)  # a stop request ends the pause at once

    retrying = Retrying(
        retry=retry_if_exception_type(retry_on),
        wait=wait_exponential(multiplier=policy.first_wait, max=policy.max_wait),
        stop=stop_any(*stops) if stops else stop_never,
        before_sleep=before_sleep,
        sleep=pause,
        reraise=True,
    )
    try:
        return retrying(attempt)
    except retry_on as exc:
        if stop is not None and stop.is_set():
            raise ServiceUnavailable(f"stopped while waiting for {what}") from exc
        raise ServiceUnavailable(f"{what} unreachable: {reason(exc)}; giving up") from exc


def open_store(
    settings: Settings,
    *,
    policy: RetryPolicy,
    stop: threading.Event | None = None,
    clock: Callable[[], datetime] = utc_now,
    pre_ping: bool = True,
) -> Store:
    """The store of ``TREADLE_DATABASE_URL``, retried while the database cannot be reached;
    its schema upgraded, or waited for, as ``TREADLE_SCHEMA_UPGRADE`` says
    (:mod:`~treadle.scheduler.service.schema_gate`). ``pre_ping`` as :meth:`Store.open`
    says."""
    url = settings.database_url
    upgrade = settings.schema_upgrade is SchemaUpgrade.AUTO

    def opened() -> Store:
        store = Store.open(url, migrate=upgrade, clock=clock, pre_ping=pre_ping)
        store.run_change_notices = settings.run_change_notices
        store.prepared_statements = settings.prepared_statements
        return store if upgrade else _reached(store)  # upgrading connected already

    store = retry_until_available(
        opened,
        what=f"database at {database_address(url)}",
        reason=_database_reason,
        retry_on=(ServiceUnavailable,),
        policy=policy,
        stop=stop,
    )
    if not upgrade:
        try:
            await_current_schema(store, settings, stop=stop)
        except BaseException:
            store.close()
            raise
    return store


def _reached(store: Store) -> Store:
    """``store`` once a connection to it opened (Store.open without migrating opens none)."""
    try:
        with store.engine.connect():
            pass
    except (OperationalError, InterfaceError) as exc:
        store.close()
        raise ServiceUnavailable(f"cannot reach the database at {store.url}") from exc
    return store


def connect_broker(
    connect: Callable[[], Any],
    *,
    address: str,
    errors: tuple[type[BaseException], ...],
    policy: RetryPolicy,
    stop: threading.Event | None = None,
) -> None:
    """Run ``connect`` (which opens broker connections) until it succeeds."""
    retry_until_available(
        connect,
        what=f"broker at {address}",
        reason=_first_line,
        retry_on=(OSError, *errors),
        policy=policy,
        stop=stop,
    )
