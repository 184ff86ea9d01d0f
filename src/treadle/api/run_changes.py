"""Which runs changed, told at once to the web UI's live streams of one API process.

A run page's stream (``GET /ui/runs/{id}/stream``) sends an event whenever its run's
version moves. Rather than each stream reading the version twice a second, every stream
of the process waits on its own :class:`Subscription` (an asyncio event), and
:class:`RunChanges` wakes those whose run changed. The stream then reads the version
(one small read), so a wake-up that turns out to be nothing costs only that.

Who tells it:

* PostgreSQL: every save of runs ``NOTIFY``s ``treadle_run_changes`` with the run ids,
  whichever process made it (a scheduler, another API process, the CLI). One listening
  connection per API process (:class:`~treadle.api.run_listener.RunChangeListener`),
  started by the first stream and shared by all, hears them on its thread and wakes the
  streams.
* SQLite: there is no NOTIFY. ``treadle api`` on SQLite runs the runs in its own process
  (the embedded runner), so the saves of that runner's store and of the app's own store
  (the requests' controls and answers) tell the hub in-process once they commit
  (``Store.runs_saved``).

Nothing is trusted blindly: a stream woken by nobody still looks every
:attr:`RunChanges.fallback_seconds` (a notice lost, or a write by another process on
SQLite), and while no notices can be heard (PostgreSQL's listener not yet connected or
lost, SQLite without the embedded runner) streams poll every :attr:`RunChanges.poll_seconds`
as they did before there were notices.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterable, Iterator, Sequence
from typing import Final

from sqlalchemy import Engine

from treadle.api.run_listener import RunChangeListener
from treadle.scheduler.store import Store
from treadle.scheduler.store.run_notices import RunsSaved

__all__ = ["FALLBACK_SECONDS", "POLL_SECONDS", "RunChanges", "Subscription"]

log = logging.getLogger("treadle.api")

#: Seconds between a stream's looks while notices can be heard (a missed one is not fatal).
FALLBACK_SECONDS: Final = 5.0
#: Seconds between a stream's looks while they cannot.
POLL_SECONDS: Final = 0.5


class Subscription:
    """One stream's wait for its run to change; made by :meth:`RunChanges.subscribe`.

    It starts signalled: the stream read its run before subscribing, so it looks once
    more at once and misses nothing that changed in between.
    """

    def __init__(self, run_id: str, loop: asyncio.AbstractEventLoop) -> None:
        self.run_id = run_id
        self._loop = loop
        self._event = asyncio.Event()
        self._event.set()

    def wake(self) -> None:
        """Make :meth:`wait` return (from any thread)."""
        with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
            self._loop.call_soon_threadsafe(self._event.set)

    async def wait(self, timeout: float) -> bool:
        """Wait until woken or ``timeout`` seconds passed; True if woken."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._event.wait(), timeout)
        woken = self._event.is_set()
        self._event.clear()
        return woken


class RunChanges:
    """The fan-out of one app: streams subscribe to a run, savers and the listener wake
    them. Thread-safe: streams subscribe on the event loop, notices come from any thread.

    Build it with :meth:`for_app`; :meth:`open` when the app starts, :meth:`close` when
    it stops (the listener's thread and connection end, the in-process hooks go).
    """

    def __init__(
        self,
        *,
        listen_on: Engine | None = None,
        saving: Sequence[Store] = (),
        in_process: bool = False,
    ) -> None:
        #: Seconds between a stream's looks while notices are heard, and while they are not.
        self.fallback_seconds = FALLBACK_SECONDS
        self.poll_seconds = POLL_SECONDS
        self._lock = threading.Lock()
        self._watching: dict[str, set[Subscription]] = {}
        self.listener = None if listen_on is None else RunChangeListener(listen_on, self.heard)
        self._saving = list(saving)
        self._in_process = in_process
        self._hook: RunsSaved = self.saved
        self._opened = False
        self._closed = False

    @classmethod
    def for_app(cls, store: Store, runner_store: Store | None = None) -> RunChanges:
        """The hub of an app on ``store``: listening on PostgreSQL; on SQLite told by the
        saves of ``store`` and of ``runner_store`` (the embedded runner's, ``treadle api``
        on SQLite), and live only with that runner (else other processes make the changes,
        and only polling sees them)."""
        if store.engine.dialect.name == "postgresql":
            # Without notices (TREADLE_RUN_CHANGE_NOTICES=false) nothing is heard: poll.
            return cls(listen_on=store.engine if store.run_change_notices else None)
        saving = [store] if runner_store is None else [store, runner_store]
        return cls(saving=saving, in_process=runner_store is not None)

    # -- the app's life ---------------------------------------------------------------------

    def open(self) -> None:
        """Be told of the in-process saves (SQLite); the listener starts with a stream."""
        with self._lock:
            if self._opened or self._closed:
                return
            self._opened = True
        for store in self._saving:
            store.runs_saved.append(self._hook)

    def close(self) -> None:
        """Stop listening (the thread ends, the connection closes) and forget the saves;
        streams still open poll from now on. Safe to call twice."""
        with self._lock:
            self._closed = True
        for store in self._saving:
            with contextlib.suppress(ValueError):
                store.runs_saved.remove(self._hook)
        if self.listener is not None:
            self.listener.stop()
        self.heard(None)  # streams still open look again, and poll from now on

    @property
    def live(self) -> bool:
        """Whether changes are heard as they happen now (else streams poll)."""
        if self._closed:
            return False
        if self.listener is not None:
            return self.listener.listening
        return self._in_process and self._opened

    def seconds_between_looks(self) -> float:
        """How long a stream waits for a notice before it looks at its run anyway."""
        return self.fallback_seconds if self.live else self.poll_seconds

    # -- streams ------------------------------------------------------------------------------

    @contextlib.contextmanager
    def subscribe(self, run_id: str) -> Iterator[Subscription]:
        """Wait for ``run_id``'s changes while the block runs (call it on the event loop).
        The first subscription starts the listener (PostgreSQL)."""
        subscription = Subscription(run_id, asyncio.get_running_loop())
        with self._lock:
            self._watching.setdefault(run_id, set()).add(subscription)
            start = self.listener is not None and not self._closed
        if start and self.listener is not None:
            self.listener.start()
        try:
            yield subscription
        finally:
            with self._lock:
                watchers = self._watching.get(run_id)
                if watchers is not None:
                    watchers.discard(subscription)
                    if not watchers:
                        del self._watching[run_id]

    def watchers(self, run_id: str) -> int:
        """How many streams wait for ``run_id`` now."""
        with self._lock:
            return len(self._watching.get(run_id, ()))

    # -- notices --------------------------------------------------------------------------------

    def saved(self, run_ids: Sequence[str]) -> None:
        """A transaction of this process saved ``run_ids`` and committed (``runs_saved``)."""
        self.heard(frozenset(run_ids))

    def heard(self, run_ids: Iterable[str] | None) -> None:
        """Wake the streams of ``run_ids`` (every stream with None); from any thread, and
        never raises (it runs after commits that must not fail for it)."""
        try:
            with self._lock:
                if run_ids is None:
                    woken = [s for subs in self._watching.values() for s in subs]
                else:
                    woken = [s for run_id in run_ids for s in self._watching.get(run_id, ())]
            for subscription in woken:
                subscription.wake()
        except Exception:
            log.exception("waking the streams of changed runs failed")
