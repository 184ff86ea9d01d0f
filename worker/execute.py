"""Runs one task attempt on a worker: a :class:`TaskDispatch` in, a :class:`TaskResult` out.

This is the whole worker-side contract, shared by the embedded runner (a thread pool in
the ``treadle run`` process) and the Celery task of distributed mode. It never raises for
anything an action does wrong: an unknown or disabled action, bad input, an exception in
action code, a result that is not JSON or too big all become a ``failed`` result whose
error ``type`` workflows can branch on. Parameter values are never written into error
messages or logs; values of ``secret`` parameters are blanked out of error text. Secrets
the dispatch carries encrypted are put into the input just before the action runs
(:mod:`treadle.worker.secret_input`) and blanked out of the result and the error. What the
action writes to stdout and stderr is kept, bounded, with every secret blanked out, and
reported with the result (:mod:`treadle.worker.output_capture`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any, Protocol

from treadle.common.errors import NotFound, ParameterError
from treadle.common.messages import TaskDispatch, TaskResult
from treadle.common.params import resolve_parameters
from treadle.common.redaction import secret_values, without_secret_values
from treadle.common.spec import ActionSpec, RunnerType
from treadle.common.statuses import AttemptStatus
from treadle.worker.errors import ActionError
from treadle.worker.output_capture import OutputCapture, capturing
from treadle.worker.payload import to_json_value
from treadle.worker.policy import enforce_decision
from treadle.worker.redaction import merged, redacted, redacted_result
from treadle.worker.runners import default_runners
from treadle.worker.runners.base import ActionCall, Runner, RunnerSettings
from treadle.worker.runners.python import action_code_error
from treadle.worker.secret_input import RevealedInput, reveal

__all__ = ["ActionLookup", "RunnerSettings", "execute", "utc_now"]

logger = logging.getLogger("treadle.worker")

# Runner types the scheduler handles itself; a worker receiving one is a routing bug.
SCHEDULER_RUNNER_TYPES = frozenset({RunnerType.INQUIRY, RunnerType.WORKFLOW})


def utc_now() -> datetime:
    return datetime.now(UTC)


class ActionLookup(Protocol):
    """Finds an action by ref; raises :class:`~treadle.common.errors.NotFound` if unknown.

    :class:`treadle.common.catalog.Catalog` satisfies it.
    """

    def action(self, ref: str) -> ActionSpec: ...


def execute(
    dispatch: TaskDispatch,
    actions: ActionLookup,
    settings: RunnerSettings,
    *,
    clock: Callable[[], datetime] = utc_now,
    runners: Mapping[RunnerType, Runner] | None = None,
) -> TaskResult:
    """Run the attempt ``dispatch`` describes and report how it went. Never raises for
    action problems; ``runners`` defaults to the process-wide registry."""
    started_at = clock()
    registry = default_runners() if runners is None else runners
    runner_bug = False
    revealed = RevealedInput(dispatch.input)
    capture: OutputCapture | None = None
    secrets: tuple[str, ...] | None = None  # worked out before the action when capturing
    try:
        revealed = reveal(dispatch, settings.secret_keys)
        if settings.capture_output_bytes > 0:
            secrets = merged(_secrets_of(dispatch, revealed.input, actions), revealed.secrets)
            capture = OutputCapture(settings.capture_output_bytes, secrets)
        with capturing(capture):  # what the action prints (docs/packs.md#captured-output)
            result = _run(dispatch, revealed.input, actions, settings, registry)
    except ActionError as exc:
        error = exc.info()
    except Exception as exc:  # a runner bug: still a failed attempt, never a lost one
        error = action_code_error(exc).info()
        runner_bug = True
    else:
        return TaskResult(
            attempt_id=dispatch.attempt_id,
            outcome=AttemptStatus.SUCCEEDED,
            result=redacted_result(result, revealed.secrets),
            worker=settings.worker_name,
            started_at=started_at,
            finished_at=clock(),
            output=None if capture is None else capture.output(),
        )
    if secrets is None:
        secrets = merged(_secrets_of(dispatch, revealed.input, actions), revealed.secrets)
    error = redacted(error, secrets)
    if runner_bug:  # logged only after secret values are blanked out
        details = error.details or {}
        logger.error(
            "attempt %s of %s: the runner failed: %s: %s\n%s",
            dispatch.attempt_id,
            dispatch.action_ref,
            error.type,
            error.message,
            details.get("traceback", ""),
        )
    return TaskResult(
        attempt_id=dispatch.attempt_id,
        outcome=AttemptStatus.FAILED,
        error=error,
        worker=settings.worker_name,
        started_at=started_at,
        finished_at=clock(),
        output=None if capture is None else capture.output(),
    )


def _run(
    dispatch: TaskDispatch,
    given: dict[str, Any],
    actions: ActionLookup,
    settings: RunnerSettings,
    runners: Mapping[RunnerType, Runner],
) -> Any:
    action = _resolve_action(dispatch.action_ref, actions)
    to_json_value(
        given,
        what=f"input of action '{action.ref}'",
        error_type="InvalidInput",
        limit=settings.max_payload_bytes,
    )
    params = _validated_input(action, given)
    # The runner the run's definition version pinned; a dispatch from an older scheduler
    # names none, and the action's own runner type serves.
    runner = _runner_for(action, dispatch.runner or action.runner_type, runners)
    raw = runner.run(action, params, ActionCall(dispatch=dispatch, settings=settings))
    result = to_json_value(
        raw,
        what=f"result of action '{action.ref}'",
        error_type="ResultNotSerializable",
        limit=settings.max_payload_bytes,
    )
    if action.policy:
        enforce_decision(action.ref, result)
    return result


def _resolve_action(ref: str, actions: ActionLookup) -> ActionSpec:
    try:
        action = actions.action(ref)
    except NotFound as exc:
        raise ActionError("UnknownAction", str(exc)) from None
    if not action.enabled:
        raise ActionError("ActionDisabled", f"action '{ref}' is disabled")
    return action


def _validated_input(action: ActionSpec, given: dict[str, Any]) -> dict[str, Any]:
    subject = f"input of action '{action.ref}'"
    try:
        return resolve_parameters(action.parameters, given, subject=subject)
    except ParameterError as exc:
        problems = without_secret_values(exc.problems, action.parameters, given)
        raise ActionError(
            "InvalidInput", f"invalid {subject}: " + "; ".join(problems), {"problems": problems}
        ) from None


def _runner_for(
    action: ActionSpec, runner_type: RunnerType, runners: Mapping[RunnerType, Runner]
) -> Runner:
    if runner_type in SCHEDULER_RUNNER_TYPES:
        raise ActionError(
            "NotWorkerAction",
            f"action '{action.ref}' has runner type '{runner_type}', which the "
            "scheduler handles; it cannot run on a worker",
        )
    runner = runners.get(runner_type)
    if runner is None:
        raise ActionError(
            "NotWorkerAction",
            f"this worker has no '{runner_type}' runner for action '{action.ref}'",
        )
    return runner


def _secrets_of(
    dispatch: TaskDispatch, given: dict[str, Any], actions: ActionLookup
) -> tuple[str, ...]:
    try:
        params = actions.action(dispatch.action_ref).parameters
    except NotFound:
        return ()
    return secret_values(params, given)
