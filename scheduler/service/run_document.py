"""The run document: one JSON object describing a run, as ``treadle run --json`` prints it.

Shape (documented in ``docs/cli.md``)::

    {document_version, id, workflow, version, status, parameters, output, error,
     created_at, started_at, finished_at, parent_run, seed,
     tasks: [{name, execution, status, attempts, result, error, started_at, finished_at,
              items_summary?: {total, by_status: {status: count},
                               first_failures: [item]},
              items?: [item], child_run?, parallel?, compensates?}],
     inquiries: [{id, task, purpose, status, prompt, schema, assigned_to}],
     budget?: {limits, spent, stopped} (scheduler/service/budget_views.py),
     held_back?: [task names], compensation_pending?: [task names],
     flow_waits?: [{task, attempt, reason, since, priority}],
     why?: [{task, execution, reason, message, count, since, details}]}

    item: {index, item, status, attempts, result, error, child_run?}

One entry per task *execution*, in the order executions started; ``execution`` numbers
them. A with_items execution is summarised (``items_summary``: counts by status and the
first failed items by position), so a run of thousands of items reads in milliseconds;
its ``items`` appear only when asked for (``items=True``), or a page at a time
(:func:`item_page`, cursor-paginated). ``document_version`` changes whenever the shape does
(2: with_items summaries; 1 had no version and always listed items). A compensation
appears as a task named ``<task>~compensate`` whose ``compensates`` is the number of the
execution it undoes. While a run is pausing or paused, ``held_back`` names the tasks whose
work waits for the resume; while it is compensating, ``compensation_pending`` names the
tasks still to undo, next first. ``flow_waits`` lists the dispatches waiting for a
concurrency slot or a rate limit, and why (``docs/flow-control.md``). While the run has
not ended, ``why`` says what each unfinished task waits for (``scheduler/service/why.py``,
``docs/operations.md``). Values of secret
parameters are replaced by ``***`` wherever they appear.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from treadle.common.errors import NotFound, ParameterError
from treadle.common.redaction import REDACTED, redact, secret_values_of
from treadle.common.statuses import TaskStatus
from treadle.scheduler.core.ids import parse_attempt_id
from treadle.scheduler.core.namespaces import iso
from treadle.scheduler.core.state import ROOT_SCOPE, DeferredKind, Execution, RunState, Unit
from treadle.scheduler.service.budget_views import budget_document
from treadle.scheduler.service.definitions import stored_edges_graph
from treadle.scheduler.service.why import explain, gather_facts
from treadle.scheduler.store import InquiryEntry, ItemSummary, UnitOfWork
from treadle.scheduler.store.flow_repo import FlowWait
from treadle.scheduler.store.run_overview import decode_unit_cursor

#: The shape's version, the document's first field: raise it whenever the shape changes.
DOCUMENT_VERSION = 2


def run_document(
    state: RunState,
    inquiries: Sequence[InquiryEntry] = (),
    *,
    items: bool = False,
    summaries: Mapping[int, ItemSummary] | None = None,
) -> dict[str, Any]:
    """The run as users see it, secrets masked; with_items tasks list ``items`` if asked.

    ``summaries`` (from ``load_run_overview``) stand for units ``state`` does not hold;
    without them the summaries are computed from the units in ``state``.
    """
    context = state.context
    secrets = run_secrets(state)
    parameters = {
        name: (REDACTED if name in context.secrets else value)
        for name, value in context.parameters.items()
    }
    document: dict[str, Any] = {
        "document_version": DOCUMENT_VERSION,
        "id": state.run_id,
        "workflow": state.workflow,
        "version": state.definition_version,
        "status": state.status.value,
        "parameters": parameters,
        "output": state.output,
        "error": None if state.error is None else dict(state.error),
        "created_at": iso(state.created_at),
        "started_at": iso(state.started_at),
        "finished_at": iso(state.finished_at),
        "parent_run": context.parent_run_id,
        "seed": context.seed,
        "tasks": [
            _execution(state, state.executions[i], items, summaries)
            for i in sorted(state.executions)
        ],
        "inquiries": [_inquiry(entry) for entry in inquiries],
    }
    budget = budget_document(state)
    if budget is not None:
        document["budget"] = budget
    if state.deferred:
        document["held_back"] = _held_back(state)
    if state.compensation:
        document["compensation_pending"] = [
            state.executions[e].task for e in state.compensation if e in state.executions
        ]
    redacted: dict[str, Any] = redact(document, secrets)
    return redacted


def run_secrets(state: RunState) -> tuple[str, ...]:
    """The values nothing shown of this run may contain (secret parameters and keys)."""
    return secret_values_of([_secret_value(state, name) for name in state.context.secrets])


def _secret_value(state: RunState, name: str) -> object:
    """A secret's value: ``name`` is a parameter name or ``keystore.<key>``."""
    if name.startswith("keystore."):
        return state.context.keystore.get(name.removeprefix("keystore."))
    return state.context.parameters.get(name)


def stored_run_document(
    uow: UnitOfWork, run_id: str, *, items: bool = False, workspace: str | None = None
) -> dict[str, Any]:
    """The run document of a stored run, with its inquiries (NotFound for an unknown id).

    Without ``items`` no with_items unit is loaded (counts and first failures only). Read
    it in ``Store.snapshot()``: the statements then see one committed state of the run.
    With ``workspace``, a run of another workspace is NotFound as an unknown run is (the
    run row read anyway tells, so checking costs no statement of its own).
    """
    if items:
        state, summaries = uow.load_run(run_id), None
    else:
        overview = uow.load_run_overview(run_id)
        state, summaries = overview.state, overview.items
    if workspace is not None and state.workspace != workspace:
        raise NotFound(f"run {run_id} not found")
    inquiries = uow.list_inquiries(run_id=run_id)
    if items:
        document = run_document(state, inquiries, items=True)
    else:
        document = run_document(state, inquiries, summaries=summaries)
    if not state.status.is_terminal:
        facts = gather_facts(
            uow,
            state,
            lambda: (
                None
                if state.definition_version is None
                else stored_edges_graph(
                    uow, state.workflow, state.definition_version, state.workspace
                )
            ),
            inquiries,
        )
        waits = flow_waits(state, facts.flow_waits.values())
        if waits:
            document["flow_waits"] = waits
        document["why"] = [reason.as_json() for reason in explain(state, facts)]
    return document


def flow_waits(state: RunState, waits: Iterable[FlowWait]) -> list[dict[str, Any]]:
    """Dispatches held back by a concurrency key or a rate limit, oldest first, each with
    its task, item and why it waits (``waits for concurrency key 'acme' (limit 2 tasks):
    2 held``)."""
    shown: list[dict[str, Any]] = []
    for wait in sorted(waits, key=lambda w: (w.since, w.attempt_id)):
        ref = parse_attempt_id(wait.attempt_id)
        execution = None if ref is None else state.executions.get(ref.execution)
        shown.append(
            {
                "task": None if execution is None else execution.task,
                "attempt": wait.attempt_id,
                "reason": wait.reason,
                "since": iso(wait.since),
                "priority": wait.priority,
            }
        )
    return shown


def item_page(
    uow: UnitOfWork, run_id: str, task: str, *, cursor: str | None = None, limit: int = 100
) -> dict[str, Any]:
    """One page of the items of task ``task`` (its latest execution), secrets masked.

    ``{run, task, execution, items: [item], next_cursor}``; pass ``next_cursor`` back for
    the next page (None after the last). A cursor keeps paging the execution it began on.
    NotFound for an unknown run or a task that has not started.
    """
    state = uow.load_run_overview(run_id, failures=0).state
    if cursor is not None:
        execution = decode_unit_cursor(cursor)[0]
        if execution not in state.executions or state.executions[execution].task != task:
            raise ParameterError(
                [f"{cursor!r} does not page task '{task}' of run {run_id}"], subject="cursor"
            )
    else:
        ran = [e.id for e in state.executions.values() if e.task == task]
        if not ran:
            raise NotFound(f"run {run_id} has no execution of task '{task}'")
        execution = max(ran)
    page = uow.unit_page(run_id, execution, cursor=cursor, limit=limit)
    shown = {
        "run": run_id,
        "task": task,
        "execution": execution,
        "items": [_item(unit) for unit in page.units],
        "next_cursor": page.next_cursor,
    }
    redacted: dict[str, Any] = redact(shown, run_secrets(state))
    return redacted


def _execution(
    state: RunState,
    execution: Execution,
    items: bool,
    summaries: Mapping[int, ItemSummary] | None,
) -> dict[str, Any]:
    units = execution.units
    summary = None
    if execution.with_items:
        known = summaries.get(execution.id) if summaries is not None else None
        summary = known if known is not None else ItemSummary.of(units)
    entry: dict[str, Any] = {
        "name": execution.task,
        "execution": execution.id,
        "status": execution.status.value,
        "attempts": summary.attempts
        if summary is not None
        else sum(unit.attempt for unit in units),
        "result": execution.result,
        "error": None if execution.error is None else dict(execution.error),
        "started_at": iso(execution.started_at),
        "finished_at": iso(execution.finished_at),
    }
    if summary is not None:
        entry["items_summary"] = _summary(summary)
        if items:
            entry["items"] = [_item(unit) for unit in units]
    elif units and units[0].child_run_id is not None:
        entry["child_run"] = units[0].child_run_id
    if execution.scope != ROOT_SCOPE:
        entry["parallel"] = state.executions[execution.scope].task
    if execution.inquiry_id is not None:
        entry["inquiry"] = execution.inquiry_id
    if execution.compensates is not None:
        entry["compensates"] = execution.compensates
    return entry


def _held_back(state: RunState) -> list[str]:
    """The tasks whose work a pausing or paused run holds back, each once, in order."""
    names: list[str] = []
    for deferred in state.deferred:
        if deferred.kind is DeferredKind.START:
            name = deferred.task
        elif deferred.execution in state.executions:
            name = state.executions[deferred.execution].task
        else:
            continue
        if name not in names:
            names.append(name)
    return names


def _summary(summary: ItemSummary) -> dict[str, Any]:
    return {
        "total": summary.total,
        "by_status": {s.value: summary.by_status[s] for s in TaskStatus if s in summary.by_status},
        "first_failures": [_item(unit) for unit in summary.first_failures],
    }


def _item(unit: Unit) -> dict[str, Any]:
    item: dict[str, Any] = {
        "index": unit.index,
        "item": unit.item,
        "status": unit.status.value,
        "attempts": unit.attempt,
        "result": unit.result,
        "error": None if unit.error is None else dict(unit.error),
    }
    if unit.child_run_id is not None:
        item["child_run"] = unit.child_run_id
    return item


def _inquiry(entry: InquiryEntry) -> dict[str, Any]:
    return {
        "id": entry.id,
        "task": entry.task,
        "purpose": entry.purpose.value,
        "status": entry.status.value,
        "prompt": entry.prompt,
        "schema": entry.schema,
        "assigned_to": entry.assigned_to,
    }
