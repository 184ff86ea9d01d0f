"""The one PostgreSQL ``LISTEN`` connection of an API process, for the web UI's live streams.

Every save of runs sends ``NOTIFY treadle_run_changes`` with the changed runs' ids
(:mod:`treadle.scheduler.store.run_notices`), whichever process saved them. An API process
listens on one connection of its own, opened by :class:`RunChangeListener` on a thread of
its own when the first stream asks (not per stream), and hands what it hears to
:class:`~treadle.api.run_changes.RunChanges`, which wakes the streams watching those runs.

The connection is outside the app's pool (a pool running dry must not take it, nor it a
request's place). When it cannot be opened or is lost (the server restarted, an operator
ran ``pg_terminate_backend``), the listener says so (every stream then looks at its run
again and polls until the connection is back) and tries again after
:data:`FIRST_RETRY_SECONDS`, doubling up to :data:`MAX_RETRY_SECONDS`. A connection idle
for :data:`KEEPALIVE_SECONDS` is asked ``SELECT 1``, so one that died silently is noticed.
:meth:`RunChangeListener.stop` (the app's shutdown) ends the thread and closes the
connection.
"""

from __future__ import annotations

import contextlib
import logging
import os
import selectors
import threading
from collections.abc import Callable, Iterable
from typing import Any, Final

from sqlalchemy import Engine

from treadle.scheduler.store.engine import safe_url
from treadle.scheduler.store.run_notices import RUN_CHANGES_CHANNEL, changed_runs

__all__ = [
    "FIRST_RETRY_SECONDS",
    "KEEPALIVE_SECONDS",
    "MAX_RETRY_SECONDS",
    "Heard",
    "RunChangeListener",
]

log = logging.getLogger("treadle.api")

#: Seconds before listening again after a failure, doubled after each failure in a row...
FIRST_RETRY_SECONDS: Final = 0.5
#: ... up to this.
MAX_RETRY_SECONDS: Final = 30.0
#: Seconds without a notice after which the connection is checked with ``SELECT 1``.
KEEPALIVE_SECONDS: Final = 30.0

#: Told what was heard: the ids of runs that changed, or ``None`` for "any run may have"
#: (a "many runs" notice, or the listener started or lost its connection).
Heard = Callable[[frozenset[str] | None], None]


class RunChangeListener:
    """Listens for ``treadle_run_changes`` on a thread of its own until :meth:`stop`.

    :meth:`start` is idempotent (the first stream starts it), and does nothing once
    stopped. :attr:`listening` says whether the connection is up now. ``first_retry`` and
    ``max_retry`` bound the backoff between attempts to listen (tests shorten or lengthen
    them).
    """

    def __init__(
        self,
        engine: Engine,
        heard: Heard,
        *,
        first_retry: float = FIRST_RETRY_SECONDS,
        max_retry: float = MAX_RETRY_SECONDS,
        keepalive: float = KEEPALIVE_SECONDS,
    ) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("only PostgreSQL sends run-change notices")
        self._engine = engine
        self._heard = heard
        self.first_retry = first_retry
        self.max_retry = max_retry
        self._keepalive = keepalive
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._pipe: tuple[int, int] | None = None
        self._listening = False
        #: The PostgreSQL backend pid of the listening connection (None while down).
        self.backend_pid: int | None = None

    @property
    def listening(self) -> bool:
        """Whether notices are heard now (the connection is up and listening)."""
        return self._listening

    @property
    def running(self) -> bool:
        """Whether the thread is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Start the thread unless it runs already or the listener was stopped."""
        with self._lock:
            if self._thread is not None or self._stopping.is_set():
                return
            self._pipe = os.pipe()
            self._thread = threading.Thread(
                target=self._run, name="treadle-run-changes", daemon=True
            )
            self._thread.start()

    def stop(self) -> None:
        """End the thread and close the connection (waits for it); safe to call twice."""
        with self._lock:
            self._stopping.set()
            thread, pipe = self._thread, self._pipe
        if thread is None or pipe is None:
            return
        with contextlib.suppress(OSError):
            os.write(pipe[1], b"!")
        thread.join()
        with self._lock:
            if self._pipe is not None:
                for fd in self._pipe:
                    with contextlib.suppress(OSError):
                        os.close(fd)
                self._pipe = None

    # -- the thread -------------------------------------------------------------------------

    def _run(self) -> None:
        delay = self.first_retry
        while not self._stopping.is_set():
            connection = self._connect()
            if connection is not None:
                delay = self.first_retry
                try:
                    self._follow(connection)
                except Exception as exc:
                    if not self._stopping.is_set():
                        log.warning(
                            "lost the connection listening for run changes (%s); "
                            "the UI's live streams poll until it is back",
                            exc,
                        )
                finally:
                    self._listening = False
                    self.backend_pid = None
                    with contextlib.suppress(Exception):
                        connection.close()
                if self._stopping.is_set():
                    return
                self._tell(None)  # changes may go unheard meanwhile: poll until back
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, self.max_retry)

    def _connect(self) -> Any:
        """A new connection listening on the channel (outside the pool), or None."""
        engine = self._engine
        connection: Any = None
        try:
            cargs, cparams = engine.dialect.create_connect_args(engine.url)
            connection = engine.dialect.connect(*cargs, **cparams)
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f"LISTEN {RUN_CHANGES_CHANNEL}")
                cursor.execute("SELECT pg_backend_pid()")
                row = cursor.fetchone()
        except Exception as exc:
            log.warning(
                "cannot listen for run changes on %s (%s); the UI's live streams poll meanwhile",
                safe_url(engine.url),
                str(exc).strip(),
            )
            if connection is not None:
                with contextlib.suppress(Exception):
                    connection.close()
            return None
        self.backend_pid = int(row[0]) if row else None
        self._listening = True
        log.info("listening for run changes on PostgreSQL channel %s", RUN_CHANGES_CHANNEL)
        self._tell(None)  # what changed before LISTEN was not heard: every stream looks
        return connection

    def _follow(self, connection: Any) -> None:
        """Hand on each notice until stopped; raises when the connection fails."""
        assert self._pipe is not None
        with selectors.DefaultSelector() as selector:
            selector.register(connection, selectors.EVENT_READ)
            selector.register(self._pipe[0], selectors.EVENT_READ)
            while not self._stopping.is_set():
                ready = selector.select(self._keepalive)
                if any(key.fileobj == self._pipe[0] for key, _ in ready):
                    return
                if not ready:  # quiet for long: is the connection still there?
                    with connection.cursor() as cursor:
                        cursor.execute("SELECT 1")
                connection.poll()
                if connection.notifies:
                    payloads = [notice.payload for notice in connection.notifies]
                    connection.notifies.clear()
                    self._tell(_merged(payloads))

    def _tell(self, runs: frozenset[str] | None) -> None:
        try:
            self._heard(runs)
        except Exception:  # a watcher's failure must not end the listening
            log.exception("handing on a run-change notice failed")


def _merged(payloads: Iterable[str]) -> frozenset[str] | None:
    """The runs several notices name together (None if one says "any run")."""
    runs: set[str] = set()
    for payload in payloads:
        named = changed_runs(payload)
        if named is None:
            return None
        runs |= named
    return frozenset(runs)
