"""When a worker tells the scheduler it started an attempt: at once, or only if it is slow.

The ``started`` notice ("attempt A runs on worker W since T") is one broker message per
task on the results queue: for a task of a few milliseconds it costs about as much as the
task (measured in docs/scaling.md). With ``TREADLE_WORKER_STARTED_NOTICE_AFTER`` set, the
notice leaves only if the action is still running after that many seconds, carrying the
real start time T; a faster task's result carries its worker and start time instead. Until
the notice, the attempt shows as ``queued``. Nothing is lost meanwhile: on RabbitMQ a
worker that dies leaves the message to be delivered again (acks late, the quorum queue's
delivery limit stops a task that keeps killing workers). On Redis the scheduler counts
deliveries from these notices, so there the notice always goes at once.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

from treadle.common.messages import WorkerReport
from treadle.worker.reports import ReportNotPublished

logger = logging.getLogger("treadle.worker")


class _Sink(Protocol):
    def publish(self, report: WorkerReport) -> None: ...


def announce(reports: _Sink, notice: WorkerReport, after: float) -> Callable[[], None]:
    """Publish ``notice`` now (``after`` <= 0), or from a timer thread in ``after`` seconds.

    Returns what the task calls once the action ended: it cancels a notice not yet sent.
    A notice sent now that cannot be published raises :class:`ReportNotPublished` (the
    task's message is then delivered again); a late one that cannot is only logged.
    """
    if after <= 0:
        reports.publish(notice)
        return _nothing
    timer = threading.Timer(after, _publish_late, (reports, notice))
    timer.daemon = True
    timer.start()
    return timer.cancel


def _publish_late(reports: _Sink, notice: WorkerReport) -> None:
    try:
        reports.publish(notice)
    except ReportNotPublished as exc:
        logger.warning("%s (the attempt's result will still be reported)", exc)


def _nothing() -> None:
    return None


__all__ = ["announce"]
