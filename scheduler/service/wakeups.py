"""What ends a scheduler step's wait besides a report, and what the step then looks at.

A :class:`~treadle.scheduler.service.process.SchedulerProcess` step waits on the broker for
reports. Two other things must end that wait early, and :class:`Wakeups` owns both: a
self-pipe that :meth:`Wakeups.wake` writes to (from a signal handler or another thread),
and, on PostgreSQL, a connection that listens (``LISTEN``) for the ``NOTIFY`` a client
sends when it writes outbox rows, or sets or lifts an emergency stop
(:meth:`Wakeups.take_stop_notice`).

After the wait, a step queries the outbox and the timers only if they may have changed:
:class:`PendingWork` holds those marks, set by the decisions this process saved, by a
``NOTIFY`` (or a lost listener) and by the fallback poll that catches other processes'
writes however they were made. A mark is cleared when the step takes it and restored if
the work it stood for fails, so nothing is forgotten after a failed step.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.engine import Engine

from treadle.scheduler.core.commands import CancelTimer, Command, ScheduleTimer
from treadle.scheduler.core.state import RunState
from treadle.scheduler.store.emergency_repo import EMERGENCY_STOP_CHANNEL
from treadle.scheduler.store.queue_repo import OUTBOX_CHANNEL

log = logging.getLogger("treadle.scheduler")

#: Seconds between attempts to re-establish a lost (or refused) LISTEN connection.
RELISTEN_SECONDS = 5.0


class Wakeups:
    """The self-pipe and the PostgreSQL LISTEN connection a waiting step also watches.

    Kept apart from the loop so the rules live here: :meth:`wake` only writes one byte to
    a non-blocking pipe (nothing else is safe in a signal handler); a listener that fails
    is dropped and re-established at most every :data:`RELISTEN_SECONDS`, and losing it
    counts as a notification (something may have been written meanwhile).
    """

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)
        self._engine: Engine | None = None
        self._listener: Any = None
        self._retry_at = 0.0
        #: Whether the emergency stops may have changed (a notice, or a lost listener).
        self._stops_changed = False

    def wake(self) -> None:
        """Make a waiting step return now (safe from signal handlers and threads)."""
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._write, b"!")

    def waitables(self) -> list[Any]:
        """What the step's wait selects on besides the broker: the pipe, and the listener."""
        fds: list[Any] = [self._read]
        if self._listener is not None:
            fds.append(self._listener)
        return fds

    def listen(self, engine: Engine) -> None:
        """LISTEN for ``treadle_outbox`` and ``treadle_emergency_stop`` on a connection of
        its own (PostgreSQL only).

        ``engine`` is remembered, so :meth:`clear` can listen again after a failure.
        """
        self._engine = engine
        self._listen()

    def _listen(self) -> None:
        engine = self._engine
        if engine is None or engine.dialect.name != "postgresql":
            return
        try:
            proxied = engine.raw_connection()
            connection: Any = proxied.dbapi_connection
            proxied.detach()  # kept for the process's lifetime, outside the pool
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(f"LISTEN {OUTBOX_CHANNEL}")
                cursor.execute(f"LISTEN {EMERGENCY_STOP_CHANNEL}")
        except Exception as exc:
            log.warning("cannot listen for outbox notifications (%s); polling instead", exc)
            self._retry_at = time.monotonic() + RELISTEN_SECONDS
            return
        self._listener = connection
        log.info("listening for new work on PostgreSQL channel %s", OUTBOX_CHANNEL)

    def clear(self) -> bool:
        """Empty the pipe and read the notifications; True if a client wrote work (or the
        listener was lost, so it may have). Without a listener, try to listen again once
        :data:`RELISTEN_SECONDS` passed since the last failure."""
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self._read, 4096):
                pass
        if self._listener is None:
            if self._engine is not None and time.monotonic() >= self._retry_at:
                self._listen()
            return False
        try:
            self._listener.poll()
        except Exception as exc:
            log.warning("lost the outbox notification connection (%s); polling meanwhile", exc)
            self._drop_listener()
            self._stops_changed = True
            return True
        notified = bool(self._listener.notifies)
        if any(n.channel == EMERGENCY_STOP_CHANNEL for n in self._listener.notifies):
            self._stops_changed = True
        self._listener.notifies.clear()
        return notified

    def take_stop_notice(self) -> bool:
        """Whether the emergency stops may have changed since the last call."""
        changed, self._stops_changed = self._stops_changed, False
        return changed

    def _drop_listener(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            with contextlib.suppress(Exception):
                listener.close()
        self._retry_at = time.monotonic() + RELISTEN_SECONDS

    def stop_listening(self) -> None:
        """Close the listener and forget the engine (it is about to be closed)."""
        self._drop_listener()
        self._engine = None

    def close(self) -> None:
        """Close the pipe; :meth:`wake` does nothing afterwards."""
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)
        self._read = self._write = -1


class PendingWork:
    """Whether the outbox and the timers may have changed since a step last looked.

    A step queries only what is marked, so an idle scheduler costs the database nothing
    between fallback polls. Marks are set by :meth:`note_decision` (a saved decision wrote
    relayed commands or timers), :meth:`mark_all` (a ``NOTIFY``, a lost listener, a failed
    step) and :meth:`fallback_poll`; both start marked. Taking a mark clears it, and the
    mark comes back if the work it stood for fails.
    """

    def __init__(self, poll_interval: float, *, relayed: Callable[[Command], bool]) -> None:
        self._poll_interval = poll_interval
        self._relayed = relayed
        self._outbox = True
        self._timers = True
        self._next_timer: datetime | None = None
        self._last_poll = time.monotonic()

    def mark_all(self) -> None:
        """The outbox and the timers may both have changed."""
        self._outbox = self._timers = True

    def mark_outbox(self) -> None:
        """The outbox may hold rows to relay (e.g. dispatches flow control released)."""
        self._outbox = True

    def mark_timers(self) -> None:
        """The timers may have changed (firing deletes timers and may schedule new ones)."""
        self._timers = True

    def note_decision(self, _state: RunState, commands: Sequence[Command]) -> None:
        """A :class:`RunService` listener: note what a saved decision wrote."""
        for command in commands:
            if self._relayed(command):
                self._outbox = True
            elif isinstance(command, (ScheduleTimer, CancelTimer)):
                self._timers = True

    def fallback_poll(self) -> bool:
        """Mark everything once every ``poll_interval`` s (other processes' rows and timers,
        however they were written); True if it did."""
        if time.monotonic() - self._last_poll < self._poll_interval:
            return False
        self._last_poll = time.monotonic()
        self.mark_all()
        return True

    def seconds_to_poll(self) -> float:
        """Seconds until the next fallback poll (negative when it is overdue)."""
        return self._poll_interval - (time.monotonic() - self._last_poll)

    @property
    def known_next_timer(self) -> datetime | None:
        """When the next timer is due, as last read (without reading it again)."""
        return self._next_timer

    @contextlib.contextmanager
    def take_outbox(self) -> Iterator[bool]:
        """Whether the outbox may hold rows to relay; the mark is cleared, and restored if
        the body (the relay) fails."""
        taken, self._outbox = self._outbox, False
        try:
            yield taken
        except BaseException:
            if taken:
                self._outbox = True
            raise

    def next_timer(self, read: Callable[[], datetime | None]) -> datetime | None:
        """When the next timer is due: re-read with ``read`` only when the timers are marked
        (the mark is cleared, and restored if ``read`` fails)."""
        if self._timers:
            self._timers = False
            try:
                self._next_timer = read()
            except BaseException:
                self._timers = True
                raise
        return self._next_timer
