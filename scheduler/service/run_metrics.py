"""The metrics of what a transaction saved: runs started and ended, and attempts ended.

:class:`RunMetrics` is a :class:`~treadle.scheduler.service.runs.RunService` observer. Every
process that saves run changes (``treadle scheduler``, ``beat``, ``api``) registers one
with its :class:`~treadle.common.metrics.Metrics`: it counts the ``runs`` metrics of the
catalogue (runs started and finished, run duration, template errors, context size, flow
waits) and, in the scheduler (whose ``Metrics`` holds the ``scheduler`` source), the task
metrics it can read from the same changes (retries scheduled, attempt durations).

It reads only what the transaction already holds (the states, the commands, the rows the
store returned; a pinned graph is cached by the run service that just used it) and counts
once the transaction commits: a rolled-back batch that is applied again is counted once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime

from treadle.common.errors import NotFound
from treadle.common.graph import Node
from treadle.common.metrics import Metrics
from treadle.common.metrics_catalog import MetricSource
from treadle.common.sandbox_report import SandboxReport
from treadle.common.spec import RunnerType
from treadle.common.statuses import RunStatus, TaskStatus
from treadle.common.transport import WORKER_RUNNERS, task_name
from treadle.scheduler.core.commands import CompleteRun, EmitLifecycleEvent, ScheduleTimer
from treadle.scheduler.core.state import RunState, TimerKind
from treadle.scheduler.service.budget_metrics import BudgetCounts
from treadle.scheduler.service.definitions import Definitions
from treadle.scheduler.service.sandbox_metrics import SandboxCounts
from treadle.scheduler.store import EndedAttempt, RunChange, SavedRuns, UnitOfWork

__all__ = ["RunMetrics", "celery_task_name"]

#: The error type of a template (an expression) that failed to render.
TEMPLATE_ERROR = "ExpressionError"

_Count = tuple[Callable[[float], None], float]


def celery_task_name(runner: RunnerType | None) -> str:
    """The Celery task a dispatch of ``runner`` is sent as (python when unknown), as the
    publisher names it."""
    return task_name(runner if runner in WORKER_RUNNERS else RunnerType.PYTHON)


class RunMetrics:
    """Counts what each saved batch changed, once its transaction commits."""

    def __init__(
        self,
        metrics: Metrics,
        definitions: Definitions,
        *,
        hostname: str = "",
        default_queue: str = "",
    ) -> None:
        self._definitions = definitions
        self._hostname = hostname
        self._default_queue = default_queue
        self._runs = MetricSource.RUNS in metrics.sources
        self._tasks = MetricSource.SCHEDULER in metrics.sources
        if self._runs:
            self._started = metrics.counter("treadle_runs_started")
            self._finished = metrics.counter("treadle_runs_finished")
            self._run_seconds = metrics.histogram("treadle_run_duration_seconds")
            self._template_errors = metrics.counter("treadle_template_errors")
            self._context_bytes = metrics.histogram("treadle_context_bytes")
            self._flow_waits = metrics.counter("treadle_flow_waits")
            self._sandbox = SandboxCounts(metrics)
            self._budgets = BudgetCounts(metrics)
        if self._tasks:
            self._retries = metrics.counter("treadle_task_retries")
            self._retried = metrics.counter("celery_task_retried")
            self._task_seconds = metrics.histogram("treadle_task_duration_seconds")

    # -- the observer ------------------------------------------------------------------------

    def saved(self, uow: UnitOfWork, changes: Sequence[RunChange], saved: SavedRuns) -> None:
        counts: list[_Count] = []
        for change in changes:
            if self._runs:
                self._run_counts(change.old, change.new, change.commands, counts)
                self._sandbox.count(change, counts)
                self._budgets.count(change, counts, lambda s, t: self._task_node(uow, s, t))
            if self._tasks:
                self._retry_counts(uow, change.new, change.commands, counts)
        if self._runs:
            counts.extend((self._flow_waits.labels(kind).inc, 1.0) for kind in saved.flow_waits)
        _after_commit(uow, counts)

    def sandbox_checked(self, report: SandboxReport) -> None:
        """A run start the sandbox checked (``SandboxObserver``)."""
        if self._runs:
            self._sandbox.start_checked(report)

    def ended(self, uow: UnitOfWork, attempts: Sequence[EndedAttempt]) -> None:
        if not self._tasks:
            return
        counts: list[_Count] = []
        for attempt in attempts:
            if attempt.finished_at is None:
                continue
            seconds = elapsed(attempt.dispatched_at, attempt.finished_at)
            child = self._task_seconds.labels(attempt.action_ref, attempt.status.value)
            counts.append((child.observe, seconds))
        _after_commit(uow, counts)

    # -- what one change counts ------------------------------------------------------------

    def _run_counts(
        self, old: RunState | None, new: RunState, commands: Sequence[object], counts: list[_Count]
    ) -> None:
        workflow = new.workflow
        was_pending = old is None or old.status is RunStatus.PENDING
        if was_pending and new.status is not RunStatus.PENDING:
            counts.append((self._started.labels(workflow).inc, 1.0))
        for command in commands:
            if isinstance(command, EmitLifecycleEvent) and command.status is TaskStatus.FAILED:
                execution = new.executions.get(command.execution)
                if execution is not None and _is_template_error(execution.error):
                    counts.append((self._template_errors.labels(workflow).inc, 1.0))
            elif isinstance(command, CompleteRun):
                status = command.status.value
                counts.append((self._finished.labels(workflow, status).inc, 1.0))
                began = new.started_at or new.created_at
                if began is not None and new.finished_at is not None:
                    seconds = elapsed(began, new.finished_at)
                    counts.append((self._run_seconds.labels(workflow, status).observe, seconds))
                counts.append(
                    (self._context_bytes.labels(workflow).observe, float(new.context_bytes))
                )
                if _is_template_error(command.error):
                    counts.append((self._template_errors.labels(workflow).inc, 1.0))

    def _retry_counts(
        self, uow: UnitOfWork, new: RunState, commands: Sequence[object], counts: list[_Count]
    ) -> None:
        for command in commands:
            if not isinstance(command, ScheduleTimer) or command.timer_kind is not TimerKind.RETRY:
                continue
            node = self._node_of(uow, new, command.timer_id)
            if node is None:
                continue
            action = node.spec.action or node.name
            queue = node.queue or self._default_queue
            counts.append((self._retries.labels(action).inc, 1.0))
            name = celery_task_name(node.runner)
            counts.append((self._retried.labels(name, self._hostname, queue).inc, 1.0))

    def _task_node(self, uow: UnitOfWork, state: RunState, task: str) -> Node | None:
        """The node of ``task`` in the run's pinned graph (cached by the definitions)."""
        try:
            graph = self._definitions.pinned(
                state.workflow, state.definition_version, uow, workspace=state.workspace
            ).graph
        except NotFound:
            return None
        return graph.nodes.get(task)

    def _node_of(self, uow: UnitOfWork, state: RunState, timer_id: str) -> Node | None:
        timer = state.timers.get(timer_id)
        if timer is None:
            return None
        execution = state.executions.get(timer.execution)
        if execution is None:
            return None
        graph = self._definitions.pinned(
            state.workflow, state.definition_version, uow, workspace=state.workspace
        ).graph
        return graph.nodes.get(execution.task)


def _is_template_error(error: object) -> bool:
    return isinstance(error, Mapping) and error.get("type") == TEMPLATE_ERROR


def _after_commit(uow: UnitOfWork, counts: list[_Count]) -> None:
    if not counts:
        return

    def count() -> None:
        for add, amount in counts:
            add(amount)

    uow.after_commit(count)


def elapsed(since: datetime, until: datetime) -> float:
    """Seconds from ``since`` to ``until``, never negative (clocks of two hosts)."""
    return max((until - since).total_seconds(), 0.0)
