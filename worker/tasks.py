"""The thin Celery tasks a worker runs: ``treadle.run.<runner>(dispatch_json)``.

One task per worker runner kind (``python``, ``shell``, ``http``), so Flower shows what
kind of work a worker does. Each is the same few steps around
:func:`treadle.worker.execute.execute`: validate the :class:`TaskDispatch`, report
``started``, run the action, report the result, and count it for Prometheus when the
worker exports metrics (:mod:`treadle.worker.metrics`). Tasks are registered on an app by
:func:`register_tasks` (never by a module-level decorator), so every app, test or
service gets its own.

Delivery: tasks are ``acks_late`` and ``reject_on_worker_lost``: the message is
acknowledged only after the result report is confirmed by the broker; a worker process
that dies mid-task leaves it to be delivered again. A report that cannot be published
rejects the message for redelivery instead of acknowledging it. The task itself always
returns ``None``: the result travels in the report, not in a Celery result backend.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import Any, Protocol

from celery import Task
from celery.exceptions import Reject, SoftTimeLimitExceeded, TimeLimitExceeded
from pydantic import ValidationError

from treadle.common.errors import TreadleError
from treadle.common.messages import (
    AttemptStarted,
    ErrorInfo,
    TaskDispatch,
    TaskResult,
    WorkerReport,
)
from treadle.common.statuses import AttemptStatus
from treadle.common.tracing import active_tracing
from treadle.common.transport import ATTEMPT_HEADER, WORKER_RUNNERS, task_name
from treadle.worker.attempt_trace import traced_attempt
from treadle.worker.execute import ActionLookup, RunnerSettings, execute, utc_now
from treadle.worker.log_context import attempt_logging
from treadle.worker.metrics import Attempted, TaskSeries, WorkerCounters, routing_key_of
from treadle.worker.reports import ReportNotPublished
from treadle.worker.started_notice import StartedNotices

logger = logging.getLogger("treadle.worker")

#: The error type of a result whose action ran out of time (soft or hard limit).
TIMEOUT_ERROR = "Timeout"
#: The error type of a dispatch message that is not a valid ``TaskDispatch``.
INVALID_DISPATCH_ERROR = "InvalidDispatch"
#: The error type when the worker itself cannot run anything (its packs do not load).
WORKER_ERROR = "WorkerError"
# How the runners report Celery's soft time limit when it interrupts action code:
# the exception's class name becomes the error type (see ``action_code_error``).
_SOFT_LIMIT_ERROR = SoftTimeLimitExceeded.__name__


class ReportSink(Protocol):
    """Where a task sends its reports (:class:`treadle.worker.reports.ReportPublisher`)."""

    def publish(self, report: WorkerReport) -> None: ...


@dataclass
class WorkerIdentity:
    """The Celery node name of the worker (``celery@host``), recorded when it starts.

    Celery gives tasks the node name as ``request.hostname`` only in prefork children;
    in the threads and solo pools it is the bare host name. Reports name the worker by
    its node name everywhere, as Flower and ``celery inspect`` do.
    """

    name: str | None = None
    #: The worker's main process id (prefork children inherit it): which incarnation of
    #: the node this is, so the scheduler can tell a restarted worker from the one that died.
    pid: int | None = None


@dataclass(frozen=True)
class WorkerRuntime:
    """What the tasks of one app need from the process they run in.

    ``load_actions`` returns the process's catalog (loaded lazily, once per process);
    ``runner_settings_for(hostname)`` the runner settings of the worker named so.
    """

    load_actions: Callable[[], ActionLookup]
    runner_settings_for: Callable[[str], RunnerSettings]
    reports: ReportSink
    clock: Callable[[], datetime] = field(default=utc_now)
    identity: WorkerIdentity = field(default_factory=WorkerIdentity)
    #: Seconds an action runs before its ``started`` notice is sent (0: before it runs;
    #: see :mod:`~treadle.worker.started_notice`).
    started_notice_after: float = 0.0
    #: Prometheus counters (``treadle worker --metrics-port``); None: not counted.
    counters: WorkerCounters | None = None
    #: Sends the ``started`` notices (built from ``reports`` and ``started_notice_after``).
    notices: StartedNotices = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "notices", StartedNotices(self.reports, self.started_notice_after))


class AttemptTask(Task):  # type: ignore[misc]  # Celery is untyped
    """Base of the ``treadle.run.*`` tasks: reports a hard time limit as a timeout.

    A hard time limit kills the pool process, so the task body cannot report it; Celery
    then calls :meth:`on_failure` in the worker's main process, which publishes the
    ``timed_out`` result on the attempt's behalf (best effort: the scheduler's own
    timeout timer covers a report that is lost).
    """

    worker_runtime: WorkerRuntime

    def on_failure(
        self, exc: BaseException, task_id: str, args: Any, kwargs: Any, einfo: Any
    ) -> None:
        if not isinstance(exc, TimeLimitExceeded):
            return
        attempt_id = _attempt_id_of(args, None)
        if attempt_id is None:
            return
        dispatch = _dispatch_or_none(args)
        timeout = dispatch.timeout_seconds if dispatch is not None else None
        ref = dispatch.action_ref if dispatch is not None else "the action"
        now = self.worker_runtime.clock()
        result = TaskResult(
            attempt_id=attempt_id,
            outcome=AttemptStatus.TIMED_OUT,
            error=_timeout_error(ref, timeout, exc.args[0] if exc.args else None, hard=True),
            worker=self.worker_runtime.identity.name,
            finished_at=now,
        )
        counters = self.worker_runtime.counters
        if counters is not None:  # counted here: the killed pool process cannot
            host = self.worker_runtime.identity.name or "unknown-worker"
            queue = dispatch.queue if dispatch is not None else None
            ran = exc.args[0] if exc.args and isinstance(exc.args[0], int | float) else None
            counters.series_of_work_queue(self.name, host, queue).ended(result, ran)
        try:
            self.worker_runtime.reports.publish(WorkerReport.of(result))
        except ReportNotPublished as problem:
            logger.error("attempt %s: hard time limit; %s", attempt_id, problem)
        else:
            logger.warning("attempt %s of %s: killed by its hard time limit", attempt_id, ref)


def register_tasks(app: Any, runtime: WorkerRuntime) -> dict[str, Any]:
    """Register ``treadle.run.<runner>`` for every worker runner kind on ``app``.

    Returns the tasks by name. Options: ``acks_late``, ``reject_on_worker_lost``,
    ``ignore_result`` (the result is the report), bound to read the request.
    """
    tasks: dict[str, Any] = {}
    for kind in WORKER_RUNNERS:
        name = task_name(kind)
        tasks[name] = app.task(
            name=name,
            bind=True,
            base=AttemptTask,
            acks_late=True,
            reject_on_worker_lost=True,
            ignore_result=True,
            typing=False,
            lazy=False,
            worker_runtime=runtime,
        )(run_dispatch)
    return tasks


@dataclass(frozen=True)
class Delivery:
    """One task message as the task sees it: its arguments and what Celery says about it."""

    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    hostname: str
    header_attempt: str | None = None
    soft_limit: float | None = None


def run_dispatch(task: Any, *args: Any, **kwargs: Any) -> None:
    """The body of every ``treadle.run.*`` task: one attempt, two reports."""
    runtime: WorkerRuntime = task.worker_runtime
    request = task.request
    delivery = Delivery(
        args=args,
        kwargs=kwargs,
        hostname=runtime.identity.name or str(request.hostname or "unknown-worker"),
        header_attempt=_header(request),
        soft_limit=_soft_limit(request),
    )
    series: TaskSeries | None = None
    if runtime.counters is not None:
        key = routing_key_of(request.delivery_info)
        series = runtime.counters.series(task.name, delivery.hostname, key)
        series.started.inc()
        series.active.inc()
    try:
        with attempt_logging(args, delivery.header_attempt):  # lines carry run, attempt, trace
            tracing = active_tracing()
            if tracing.enabled:  # the attempt's span (docs/operations.md#traces)
                attempted = traced_attempt(tracing, task, delivery, partial(run_attempt, runtime))
            else:
                attempted = run_attempt(runtime, delivery)
    except ReportNotPublished as exc:
        if series is not None:
            series.rejected.inc()
        logger.error("%s; the message is rejected and will be delivered again", exc)
        raise Reject(str(exc), requeue=True) from exc
    finally:
        if series is not None:
            series.active.dec()
    if series is not None:
        if attempted is None:  # dropped: no attempt to report on
            series.rejected.inc()
        else:
            series.ended(attempted.result, attempted.seconds)


def run_attempt(runtime: WorkerRuntime, delivery: Delivery) -> Attempted | None:
    """Validate, report ``started``, execute, report the result (raises
    :class:`ReportNotPublished` when a report cannot be published). Returns the result
    reported and the seconds the action ran; None for a message dropped unreported."""
    hostname = delivery.hostname
    try:
        dispatch = _parse_dispatch(delivery.args, delivery.kwargs)
    except InvalidDispatch as exc:
        attempt_id = _attempt_id_of(delivery.args, delivery.header_attempt)
        invalid = _report_invalid(runtime, exc, attempt_id, hostname)
        return None if invalid is None else Attempted(invalid, None)
    reports = runtime.reports
    started_at = runtime.clock()
    result: TaskResult | None = None
    notice = WorkerReport.of(
        AttemptStarted(
            attempt_id=dispatch.attempt_id,
            worker=hostname,
            at=started_at,
            worker_pid=runtime.identity.pid,
        )
    )
    began = time.perf_counter()
    try:
        cancel_notice = runtime.notices.announce(notice)
        began = time.perf_counter()  # the action's time, without the notice's
        try:
            result = _execute(runtime, dispatch, hostname)
        finally:
            cancel_notice()
    except SoftTimeLimitExceeded:
        result = None
    ran = time.perf_counter() - began
    if result is None or _hit_soft_limit(result):
        result = TaskResult(
            attempt_id=dispatch.attempt_id,
            outcome=AttemptStatus.TIMED_OUT,
            error=_timeout_error(
                dispatch.action_ref, dispatch.timeout_seconds, delivery.soft_limit
            ),
            worker=hostname,
            started_at=started_at,
            finished_at=runtime.clock(),
            output=None if result is None else result.output,  # what it printed until then
        )
    _log_outcome(dispatch, result)
    reports.publish(WorkerReport.of(result))
    return Attempted(result, ran)


def _execute(runtime: WorkerRuntime, dispatch: TaskDispatch, hostname: str) -> TaskResult:
    settings = runtime.runner_settings_for(hostname)
    try:
        actions = runtime.load_actions()
    except Exception as exc:  # the worker is broken, not the attempt's input
        logger.exception("worker %s cannot load its packs", hostname)
        return TaskResult(
            attempt_id=dispatch.attempt_id,
            outcome=AttemptStatus.FAILED,
            error=ErrorInfo(
                type=WORKER_ERROR,
                message=f"worker {hostname} cannot load its packs: {type(exc).__name__}: {exc}",
            ),
            worker=hostname,
        )
    return execute(dispatch, actions, settings, clock=runtime.clock)


def _hit_soft_limit(result: TaskResult) -> bool:
    return (
        result.outcome is AttemptStatus.FAILED
        and result.error is not None
        and result.error.type == _SOFT_LIMIT_ERROR
    )


def _timeout_error(
    action_ref: str, timeout: float | None, limit: float | None, *, hard: bool = False
) -> ErrorInfo:
    seconds = timeout if timeout is not None else limit
    what = f"its timeout of {seconds:g} s" if seconds is not None else "its time limit"
    how = "hard time limit: the worker process was killed" if hard else "soft time limit"
    return ErrorInfo(type=TIMEOUT_ERROR, message=f"action '{action_ref}' exceeded {what} ({how})")


def _log_outcome(dispatch: TaskDispatch, result: TaskResult) -> None:
    if result.outcome is AttemptStatus.SUCCEEDED:
        logger.info("attempt %s of %s succeeded", dispatch.attempt_id, dispatch.action_ref)
        return
    error_type = result.error.type if result.error is not None else "?"
    logger.info(
        "attempt %s of %s %s: %s",
        dispatch.attempt_id,
        dispatch.action_ref,
        result.outcome.value.replace("_", " "),
        error_type,
    )


# -- the dispatch argument ---------------------------------------------------------------


class InvalidDispatch(TreadleError):
    """The task's arguments are not one valid :class:`TaskDispatch` (a sender's bug)."""


def _parse_dispatch(args: Sequence[Any], kwargs: Mapping[str, Any]) -> TaskDispatch:
    if len(args) != 1 or kwargs:
        raise InvalidDispatch(
            f"expected one positional argument (the TaskDispatch as JSON), got "
            f"{len(args)} positional and {len(kwargs)} keyword arguments"
        )
    payload = args[0]
    try:
        if isinstance(payload, str | bytes):
            return TaskDispatch.model_validate_json(payload)
        return TaskDispatch.model_validate(payload)
    except ValidationError as exc:
        # Without the offending values: the input may hold secret parameters.
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'dispatch'}: {error['msg']}"
            for error in exc.errors(include_input=False, include_url=False)
        )
        raise InvalidDispatch(f"invalid TaskDispatch: {problems}") from None


def _dispatch_or_none(args: Any) -> TaskDispatch | None:
    try:
        return _parse_dispatch(tuple(args or ()), {})
    except InvalidDispatch:
        return None


def _attempt_id_of(args: Any, header_attempt: str | None) -> str | None:
    """The attempt a (possibly invalid) dispatch is for: its ``attempt_id`` if it has a
    usable one, else the ``treadle-attempt`` header."""
    if args and isinstance(args[0], Mapping):
        found = args[0].get("attempt_id")
        if isinstance(found, str) and found:
            return found
    return header_attempt or None


def _report_invalid(
    runtime: WorkerRuntime, problem: InvalidDispatch, attempt_id: str | None, hostname: str
) -> TaskResult | None:
    if attempt_id is None:
        logger.error("dropped a message with no attempt id: %s", problem)
        return None
    logger.error("attempt %s: %s", attempt_id, problem)
    now = runtime.clock()
    result = TaskResult(
        attempt_id=attempt_id,
        outcome=AttemptStatus.FAILED,
        error=ErrorInfo(type=INVALID_DISPATCH_ERROR, message=str(problem)),
        worker=hostname,
        started_at=now,
        finished_at=now,
    )
    runtime.reports.publish(WorkerReport.of(result))
    return result


def _header(request: Any) -> str | None:
    headers = getattr(request, "headers", None) or {}
    value = headers.get(ATTEMPT_HEADER) or getattr(request, ATTEMPT_HEADER, None)
    return str(value) if value else None


def _soft_limit(request: Any) -> float | None:
    limits = getattr(request, "timelimit", None) or (None, None)
    soft = limits[1] if len(limits) > 1 else None
    return float(soft) if soft else None
