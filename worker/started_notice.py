"""When a worker tells the scheduler it started an attempt: at once, or only if it is slow.

The ``started`` notice ("attempt A runs on worker W since T") is one broker message per
task on the results queue: for a task of a few milliseconds it costs about as much as the
task (measured in docs/deployment.md). With ``TREADLE_WORKER_STARTED_NOTICE_AFTER``
(RabbitMQ; 0.25 s by default, 0 for at once), the notice leaves only if the action is
still running after that many seconds, carrying the real start time T; a faster task's
result carries its worker and start time instead. Until the notice, the attempt shows as
``queued``. Nothing is lost meanwhile: a worker that dies leaves the message to be
delivered again (acks late, the quorum queue's delivery limit stops a task that keeps
killing workers). On Redis the scheduler counts deliveries from these notices, so there
the notice always goes at once.

Late notices are kept by :class:`StartedNotices`: one thread per process sends those that
are due, in order. A thread (or timer) per attempt would cost more than the notice it
saves: starting and cancelling a ``threading.Timer`` was a sixth of a no-op task's time
in the worker. Every notice has the same delay, so they come due in the order they were
announced and a queue suffices.

Nor does a notice wake the thread, unless it has gone idle: with nothing to wait for, the
thread first waits one delay more, and a notice announced meanwhile comes due after that
wait ends. Waking it for each task (one lock release, a thread switch) was a few percent
of a busy worker's time, for a thread that only has to look every so often.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Protocol

from treadle.common.messages import WorkerReport
from treadle.worker.reports import ReportNotPublished

logger = logging.getLogger("treadle.worker")


class _Sink(Protocol):
    def publish(self, report: WorkerReport) -> None: ...


class _Pending:
    """A notice waiting for its time; ``cancelled`` once the action ended first."""

    __slots__ = ("cancelled", "due", "notice")

    def __init__(self, due: float, notice: WorkerReport) -> None:
        self.due = due
        self.notice = notice
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class StartedNotices:
    """Sends one worker process's ``started`` notices: at once, or late from one thread.

    :meth:`announce` returns what the task calls once the action ended: it withdraws a
    notice not yet sent (one attribute set; the thread drops it when it comes due). The
    thread starts with the first late notice of a process (a forked pool child starts its
    own) and is a daemon: a process that exits drops the notices still waiting, whose
    attempts it no longer runs anyway.
    """

    def __init__(
        self, reports: _Sink, after: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._reports = reports
        self.after = after
        self._clock = clock
        self._fresh()
        os.register_at_fork(after_in_child=self._fresh)

    def _fresh(self) -> None:
        """A new queue, lock and (not yet started) thread: a child never shares its parent's."""
        self._pending: deque[_Pending] = deque()
        self._ready = threading.Condition(threading.Lock())
        self._thread: threading.Thread | None = None
        #: The thread waits until told (it waited a whole delay with nothing to send).
        self._idle = False

    def announce(self, notice: WorkerReport) -> Callable[[], None]:
        """Publish ``notice`` now (``after`` <= 0), or in ``after`` seconds unless withdrawn.

        A notice sent now that cannot be published raises :class:`ReportNotPublished` (the
        task's message is then delivered again); a late one that cannot is only logged.
        """
        if self.after <= 0:
            self._reports.publish(notice)
            return _nothing
        pending = _Pending(self._clock() + self.after, notice)
        with self._ready:
            self._pending.append(pending)
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._send_due, name="treadle-started-notices", daemon=True
                )
                self._thread.start()
            elif self._idle:
                self._idle = False
                self._ready.notify()  # the thread waits for work, not for a due time
        return pending.cancel

    def _send_due(self) -> None:
        while True:
            due = self._next_due()
            try:
                self._reports.publish(due.notice)
            except ReportNotPublished as exc:
                logger.warning("%s (the attempt's result will still be reported)", exc)
            except Exception:  # the thread must outlive one bad publish
                logger.exception("could not send a started notice")

    def _next_due(self) -> _Pending:
        """Wait for the oldest notice still wanted to come due, and take it."""
        with self._ready:
            while True:
                while self._pending and self._pending[0].cancelled:
                    self._pending.popleft()
                if not self._pending:
                    # A notice announced during this wait comes due after it ends.
                    self._ready.wait(self.after)
                    if not self._pending:
                        self._idle = True
                        while self._idle:
                            self._ready.wait()
                    continue
                wait = self._pending[0].due - self._clock()
                if wait <= 0:
                    return self._pending.popleft()
                self._ready.wait(wait)


def _nothing() -> None:
    return None


__all__ = ["StartedNotices"]
