"""A worker pool in the scheduler's process: the embedded stand-in for Celery workers.

Dispatches from the outbox are executed on threads by the worker's own ``execute`` function,
and results are queued back to the scheduler loop exactly as they would arrive from a
broker. Python threads cannot be killed, so a cancelled attempt that already started runs
to its end; its late result is ignored by the core like any stale result.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from queue import SimpleQueue

from treadle.common.messages import ErrorInfo, TaskDispatch, TaskResult
from treadle.common.statuses import AttemptStatus
from treadle.scheduler.core.commands import CancelTask, Command, DispatchTask
from treadle.worker.execute import ActionLookup, RunnerSettings, execute


class LocalPublisher:
    """Runs dispatched attempts on a thread pool and queues their results."""

    def __init__(self, actions: ActionLookup, settings: RunnerSettings, threads: int) -> None:
        self._actions = actions
        self._settings = settings
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="treadle-worker")
        self.results: SimpleQueue[TaskResult] = SimpleQueue()
        self._futures: dict[str, Future[None]] = {}
        self._lock = threading.Lock()
        #: Called (on the worker thread) after each result is queued: wakes a waiting loop.
        self.on_result: Callable[[], None] | None = None

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._futures)

    def publish(self, commands: Sequence[Command]) -> None:
        for command in commands:
            if isinstance(command, DispatchTask):
                dispatch = command.dispatch
                with self._lock:
                    if dispatch.attempt_id in self._futures:
                        continue  # published again after a crash before commit: already running
                    self._futures[dispatch.attempt_id] = self._pool.submit(self._run, dispatch)
            elif isinstance(command, CancelTask):
                with self._lock:
                    future = self._futures.get(command.attempt_id)
                    if future is not None and future.cancel():
                        del self._futures[command.attempt_id]

    def _run(self, dispatch: TaskDispatch) -> None:
        try:
            result = execute(dispatch, self._actions, self._settings)
        except BaseException as exc:  # execute never raises for action problems; this is a bug
            result = TaskResult(
                attempt_id=dispatch.attempt_id,
                outcome=AttemptStatus.FAILED,
                error=ErrorInfo(type="WorkerError", message=f"{type(exc).__name__}: {exc}"),
            )
        # Queue the result before the attempt stops counting as in flight: the loop treats
        # "nothing in flight and nothing queued" as "the run cannot move any more".
        self.results.put(result)
        with self._lock:
            self._futures.pop(dispatch.attempt_id, None)
        if self.on_result is not None:
            self.on_result()

    def drop_queued(self) -> list[str]:
        """Cancel the attempts not started yet (no thread was free for them); their ids.

        They will never report: whoever stops the pool ends them (as lost) itself.
        """
        with self._lock:
            dropped = [aid for aid, future in self._futures.items() if future.cancel()]
            for attempt_id in dropped:
                del self._futures[attempt_id]
        return dropped

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
