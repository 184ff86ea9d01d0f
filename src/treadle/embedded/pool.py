"""A worker pool in the scheduler's process: the embedded stand-in for Celery workers.

Dispatches from the outbox are executed on threads by the worker's own ``execute`` function,
and results are queued back to the scheduler loop exactly as they would arrive from a
broker. Waiting dispatches start in priority order, 9 first, then in the order they came
(as the brokers do, ``docs/flow-control.md``). Python threads cannot be killed, so a
cancelled attempt that already started runs to its end; its late result is ignored by the
core like any stale result.
"""

from __future__ import annotations

import heapq
import itertools
import threading
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from queue import SimpleQueue

from treadle.common.messages import ErrorInfo, TaskDispatch, TaskResult
from treadle.common.statuses import AttemptStatus
from treadle.common.transport import checked_priority
from treadle.scheduler.core.commands import CancelTask, Command, DispatchTask
from treadle.worker.execute import ActionLookup, RunnerSettings, execute

#: How an attempt is run: the worker's ``execute`` (tests may give another).
Execute = Callable[[TaskDispatch, ActionLookup, RunnerSettings], TaskResult]


class LocalPublisher:
    """Runs dispatched attempts on a thread pool, highest priority first, and queues their
    results.

    Each dispatch puts one entry on a heap (``-priority``, arrival) and one "run the next"
    job on the pool; a free thread runs whichever entry is first on the heap then, not
    necessarily the one its job was submitted with.
    """

    def __init__(
        self,
        actions: ActionLookup,
        settings: RunnerSettings,
        threads: int,
        *,
        run: Execute = execute,
    ) -> None:
        self._actions = actions
        self._settings = settings
        self._execute = run
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="treadle-worker")
        self.results: SimpleQueue[TaskResult] = SimpleQueue()
        self._arrivals = itertools.count()
        self._heap: list[tuple[int, int, str]] = []
        self._waiting: dict[str, TaskDispatch] = {}  # not started yet, by attempt id
        self._running: set[str] = set()
        self._lock = threading.Lock()
        #: Called (on the worker thread) after each result is queued: wakes a waiting loop.
        self.on_result: Callable[[], None] | None = None

    @property
    def in_flight(self) -> int:
        with self._lock:
            return len(self._waiting) + len(self._running)

    def publish(self, commands: Sequence[Command]) -> None:
        for command in commands:
            if isinstance(command, DispatchTask):
                self._enqueue(command.dispatch, checked_priority(command.priority))
            elif isinstance(command, CancelTask):
                with self._lock:  # not started: it never will (its heap entry is skipped)
                    self._waiting.pop(command.attempt_id, None)

    def _enqueue(self, dispatch: TaskDispatch, priority: int) -> None:
        attempt_id = dispatch.attempt_id
        with self._lock:
            if attempt_id in self._waiting or attempt_id in self._running:
                return  # published again after a crash before commit: already here
            self._waiting[attempt_id] = dispatch
            heapq.heappush(self._heap, (-priority, next(self._arrivals), attempt_id))
        self._pool.submit(self._run_next)

    def _take_next(self) -> TaskDispatch | None:
        """The first waiting dispatch by priority and arrival, now running; None if the
        heap holds only cancelled or dropped entries."""
        with self._lock:
            while self._heap:
                _, _, attempt_id = heapq.heappop(self._heap)
                dispatch = self._waiting.pop(attempt_id, None)
                if dispatch is not None:
                    self._running.add(attempt_id)
                    return dispatch
            return None

    def _run_next(self) -> None:
        dispatch = self._take_next()
        if dispatch is None:
            return
        try:
            result = self._execute(dispatch, self._actions, self._settings)
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
            self._running.discard(dispatch.attempt_id)
        if self.on_result is not None:
            self.on_result()

    def revoke(self, attempt_ids: Iterable[str]) -> None:
        """Never start these attempts (an emergency stop took them back); one already
        running finishes, and its late result is dropped (its attempt has ended)."""
        with self._lock:
            for attempt_id in attempt_ids:
                self._waiting.pop(attempt_id, None)

    def drop_queued(self) -> list[str]:
        """Cancel the attempts not started yet (no thread was free for them); their ids.

        They will never report: whoever stops the pool ends them (as lost) itself.
        """
        with self._lock:
            dropped = list(self._waiting)
            self._waiting.clear()
            self._heap.clear()
        return dropped

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
