"""The worker's heartbeat (:mod:`treadle.common.heartbeat`): written while it consumes.

A bootstep of the worker's consumer, started once the task consumer is (so the worker is
connected to the broker and consuming its queues). It writes the heartbeat at once, then
from a timer of the consumer's own event loop: a loop that stops turning stops the
heartbeat. When the broker connection is lost, Celery stops the consumer's steps, and the
heartbeat says so (``not consuming``) until the consumer starts
again; at shutdown it says the worker stopped. Tasks run in the pool (processes or
threads), so a long task does not hold the heartbeat up, except with ``--pool solo``,
which runs tasks on the event loop itself.
"""

from __future__ import annotations

from typing import Any

from celery import bootsteps

from treadle.common.heartbeat import HeartbeatWriter

__all__ = ["WriteHeartbeat", "heartbeat_step"]

_TASKS_STEP = "celery.worker.consumer.tasks:Tasks"


class WriteHeartbeat(bootsteps.StartStopStep):  # type: ignore[misc]  # Celery is untyped
    """Writes the worker's heartbeat while its consumer consumes (module docstring)."""

    requires = (_TASKS_STEP,)
    writer: HeartbeatWriter | None = None

    def __init__(self, parent: Any, **kwargs: Any) -> None:
        super().__init__(parent, **kwargs)
        self._timer: Any = None

    def start(self, c: Any) -> None:
        writer = self.writer
        if writer is None:
            return
        connection = c.connection
        queues = sorted(queue.name for queue in getattr(c.task_consumer, "queues", None) or ())
        address = f"{connection.hostname or 'localhost'}:{connection.port or ''}".rstrip(":")
        writer.progressed(f"broker {address}, consuming {', '.join(queues) or 'no queue'}")
        # twice per interval: the writer writes once per interval whatever the timer's jitter
        self._timer = c.timer.call_repeatedly(max(writer.every / 2, 0.5), writer.progressed)

    def _cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def stop(self, c: Any) -> None:
        """The consumer stops: the broker connection was lost (it reconnects), or a warm
        shutdown began (tasks finish, then :meth:`shutdown`)."""
        self._cancel()
        if self.writer is not None:
            self.writer.trouble("not consuming: the broker connection was lost, or it is stopping")

    def shutdown(self, c: Any) -> None:
        self._cancel()
        if self.writer is not None:
            self.writer.stopped()


def heartbeat_step(writer: HeartbeatWriter) -> type[WriteHeartbeat]:
    """A :class:`WriteHeartbeat` step bound to ``writer``, for ``app.steps["consumer"]``."""
    return type(
        "WriteTreadleHeartbeat",
        (WriteHeartbeat,),
        {"writer": writer, "__module__": __name__},
    )
