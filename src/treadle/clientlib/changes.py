"""The changes made on the database that more than one caller makes, each in one
transaction with its audit entry (:func:`treadle.clientlib.audit.audited`).

:class:`treadle.Client`, the ``treadle`` commands (embedded or ``--distributed``) and the
HTTP API control runs, answer inquiries, send events and publish-then-start definitions the
same way here, under the action names the API records: ``run.<control>``,
``inquiry.respond``, ``event.send``, ``workflow.publish`` and ``run.start``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from treadle.clientlib.audit import Auditor, Change
from treadle.clientlib.publishing import Registered, owner_for_clients
from treadle.common.budget import Budget
from treadle.common.errors import ServiceUnavailable, TreadleError
from treadle.common.graph import Graph
from treadle.common.spec import WorkflowSpec
from treadle.scheduler.core.state import RunState
from treadle.scheduler.service.controls import Control, apply_control_in
from treadle.scheduler.service.definitions import Definitions
from treadle.scheduler.service.event_outcome import EventOutcome
from treadle.scheduler.service.events import EventRouter, new_event_id
from treadle.scheduler.service.inquiries import answer_inquiry_in
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.service.starting import RunOptions, RunStarter
from treadle.scheduler.store import InquiryEntry, UnitOfWork

__all__ = [
    "answer",
    "control_details",
    "control_run",
    "publish_and_start",
    "publish_one",
    "send_event",
]


def control_run(
    by: Auditor,
    runs: RunService,
    run_id: str,
    control: Control,
    *,
    reason: str | None,
    budget: Budget | None = None,
    task: str | None = None,
) -> RunState:
    """Check and apply ``control`` (``run.<control>``, the reason, a resume's new budget
    limits and the task a retry names in the details; the run's event log names the
    principal as who asked); the run's state after."""
    details = control_details(reason, budget, task)
    with by.audited(Change(f"run.{control.value}", run_id, details)) as uow:
        apply_control_in(
            uow,
            runs,
            run_id,
            control,
            reason=reason,
            by=by.principal.actor,
            budget=budget,
            task=task,
        )
    cached = runs.cached(run_id)
    return cached if cached is not None else runs.load(run_id)


def control_details(
    reason: str | None, budget: Budget | None = None, task: str | None = None
) -> dict[str, Any] | None:
    """A control's audit details: its reason, a resume's new budget limits, the task a
    retry names (None when there is nothing to say)."""
    details: dict[str, Any] = {}
    if reason is not None:
        details["reason"] = reason
    if budget is not None:
        details["budget"] = budget.as_json()
    if task is not None:
        details["task"] = task
    return details or None


def answer(
    by: Auditor, runs: RunService, inquiry_id: str, response: Any, *, responder: str | None
) -> InquiryEntry:
    """Answer the inquiry (``inquiry.respond``; ``responder`` in the details); the inquiry
    as answered."""
    details = {"responder": responder} if responder is not None else None
    with by.audited(Change("inquiry.respond", inquiry_id, details)) as uow:
        return answer_inquiry_in(uow, runs, inquiry_id, response, responder)


def send_event(
    by: Auditor,
    router: EventRouter,
    event_type: str,
    *,
    subject: str | None = None,
    data: Any = None,
    event_id: str | None = None,
) -> EventOutcome:
    """Send an event through ``router`` into the principal's workspace, as ``event.send``
    (target: the event id; without one, a new id is made). The entry commits with the
    transaction that records the event and releases the waits; a duplicate, or a send
    refused before that transaction (bad data, over the size limit), is recorded in a
    transaction of its own."""
    event_id = event_id if event_id is not None else new_event_id()
    # as text whatever a caller passed: checking them is the router's (ParameterError)
    details: dict[str, Any] = {
        "type": str(event_type),
        "subject": None if subject is None else str(subject),
    }
    change = Change("event.send", str(event_id), details)
    opened = False

    @contextmanager
    def recorded() -> Iterator[UnitOfWork]:
        nonlocal opened
        opened = True
        with by.audited(change) as uow:
            yield uow

    try:
        outcome = router.send(
            event_type,
            subject=subject,
            data=data,
            event_id=event_id,
            transaction=recorded,
            workspace=by.principal.workspace,
        )
    except ServiceUnavailable:
        raise
    except TreadleError as exc:
        if not opened:  # refused before the recording transaction: record the attempt
            by.attempted([change], exc)
        raise
    if not opened:  # a duplicate found at once: nothing changed, the attempt is recorded
        duplicate = Change("event.send", str(event_id), {**details, "duplicate": True})
        with by.audited(duplicate):
            pass
    return outcome


def publish_one(
    definitions: Definitions,
    uow: UnitOfWork,
    spec: WorkflowSpec,
    *,
    at: datetime,
    author: str | None,
    graph: Graph | None = None,
) -> Registered:
    """Publish ``spec`` with ``definitions``' catalog in ``uow`` (a new version only if it
    changed)."""
    owner = owner_for_clients(uow, spec.ref)
    before = {v.version for v in uow.list_definition_versions(spec.ref, workspace=owner)}
    pinned = definitions.publish(spec, at=at, author=author, uow=uow, graph=graph, workspace=owner)
    return Registered(spec.ref, pinned.version, pinned.version not in before)


def publish_and_start(
    by: Auditor,
    starter: RunStarter,
    spec: WorkflowSpec,
    parameters: Mapping[str, Any],
    *,
    options: RunOptions,
    publish: Callable[[UnitOfWork], Registered],
) -> str:
    """Check ``parameters``, publish ``spec`` (``publish``) and start a run of the version
    published, in one transaction recorded as ``workflow.publish`` and ``run.start``:
    bad parameters or a bad definition publish nothing and start nothing. The run's id."""
    published: dict[str, Any] = {}
    started: dict[str, Any] = {"version": None, "idempotency_key": options.idempotency_key}
    changes = (
        Change("workflow.publish", spec.ref, published),
        Change("run.start", spec.ref, started),
    )
    with by.audited(*changes) as uow:
        starter.prepare_parameters(spec, parameters)
        registered = publish(uow)
        published.update(version=registered.version, new=registered.new)
        pinned = starter.definitions.pinned(
            spec.ref, registered.version, uow, workspace=options.workspace
        )
        run = starter.start_pinned_in(uow, pinned, parameters, options)
        started.update(version=pinned.version, run=run.run_id, created=run.created)
    return run.run_id
