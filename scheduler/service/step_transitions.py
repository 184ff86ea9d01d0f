"""An operator moving one waiting step of a run on: complete it, fail it, or skip it.

The workflows/v1 plan's ``TransitionStep``: an operator completes a waiting human task with
a payload, or fails or skips a step that waits, with a reason. Mapped onto what Treadle's
core does:

* **complete**: the task waits on a person, so completing it is answering its open
  inquiry with the payload, exactly as ``POST /inquiries/{id}/respond`` (the payload is
  checked against the inquiry's schema; a misfit changes nothing). A task with several
  open inquiries (with_items) is answered inquiry by inquiry instead.
* **fail**: ``StepFailRequested``: the step's inquiry is closed or its event wait dropped,
  and it fails with the reason; its transitions decide what follows
  (:mod:`treadle.scheduler.core.interventions`).
* **skip**: ``StepSkipRequested``: what the step waits on is closed the same way, and it
  ends ``skipped`` with no result, as a task whose ``when`` guard is false ends; its
  transitions decide what follows. A step whose work runs cannot be skipped (its action
  may already have acted).

Everything is checked with the run locked, in the caller's transaction: a transition that
does not apply raises :class:`TransitionRefused` (a ConflictError) and stores nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from treadle.common.errors import ConflictError, NotFound
from treadle.common.statuses import InquiryStatus
from treadle.scheduler.core.events import StepFailRequested, StepSkipRequested
from treadle.scheduler.core.interventions import waiting_step
from treadle.scheduler.core.state import Execution
from treadle.scheduler.service.inquiries import answer_inquiry_in
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.store import UnitOfWork

__all__ = ["StepTransition", "TransitionRefused", "transition_step_in"]


class StepTransition(StrEnum):
    """What an operator may do to a waiting step."""

    COMPLETE = "complete"
    FAIL = "fail"
    SKIP = "skip"


class TransitionRefused(ConflictError):
    """A transition that does not apply to the step as it is; nothing was changed."""


def transition_step_in(
    uow: UnitOfWork,
    runs: RunService,
    run_id: str,
    task: str,
    transition: StepTransition,
    *,
    payload: Any = None,
    reason: str | None = None,
    actor: str | None = None,
) -> str | None:
    """Apply ``transition`` to ``task`` of ``run_id`` in ``uow``; returns the id of the
    inquiry a completion answered (None for a failure).

    NotFound for an unknown run or a task its definition does not have; TransitionRefused
    when the step does not wait as the transition needs; ParameterError (nothing changed)
    for a payload that does not fit the inquiry's schema.
    """
    uow.lock_run(run_id)  # NotFound for an unknown run
    state = uow.load_run(run_id)
    graph = runs.definitions.pinned(
        state.workflow, state.definition_version, uow, workspace=state.workspace
    ).graph
    node = graph.nodes.get(task)
    if node is None or node.hidden:
        raise NotFound(f"run {run_id} has no task '{task}'")
    if state.status.is_terminal:
        raise TransitionRefused(
            f"run {run_id} is {state.status.value}; its steps can no longer be transitioned"
        )
    if transition is StepTransition.COMPLETE:
        return _complete(uow, runs, run_id, task, payload=payload, actor=actor)
    if waiting_step(state, task) is None:
        verb = "failed" if transition is StepTransition.FAIL else "skipped"
        raise TransitionRefused(
            f"{transition.value} is not supported for this step: task '{task}' of run "
            f"{run_id} {_where(state.executions, task)}, and only a step that waits on a "
            f"person or an event can be {verb}"
        )
    event: StepFailRequested | StepSkipRequested = (
        StepFailRequested(task=task, reason=reason)
        if transition is StepTransition.FAIL
        else StepSkipRequested(task=task, reason=reason)
    )
    runs.apply_in(uow, [(run_id, event)])
    return None


def _complete(
    uow: UnitOfWork, runs: RunService, run_id: str, task: str, *, payload: Any, actor: str | None
) -> str:
    open_ = [
        inquiry
        for inquiry in uow.list_inquiries(status=InquiryStatus.PENDING, run_id=run_id)
        if inquiry.task == task
    ]
    if not open_:
        raise TransitionRefused(
            f"complete is not supported for this step: task '{task}' of run {run_id} has no "
            "open inquiry (only a step waiting on a person can be completed)"
        )
    if len(open_) > 1:
        ids = ", ".join(inquiry.id for inquiry in open_)
        raise TransitionRefused(
            f"task '{task}' of run {run_id} has {len(open_)} open inquiries ({ids}); "
            "answer each of them instead"
        )
    answered = answer_inquiry_in(uow, runs, open_[0].id, payload, actor)
    return answered.id


def _where(executions: Mapping[int, Execution], task: str) -> str:
    """``has not started`` / ``is running`` ..., for a refusal."""
    ran = [e for e in executions.values() if e.task == task]
    if not ran:
        return "has not started"
    latest = max(ran, key=lambda e: e.id)
    if latest.with_items:
        return f"is a with_items task ({latest.status.value}) that waits item by item"
    return f"is {latest.status.value}"
