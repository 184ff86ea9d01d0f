"""The run document: one JSON object describing a run, as ``treadle run --json`` prints it.

Shape (documented in ``docs/cli.md``)::

    {id, workflow, version, status, parameters, output, error, created_at, started_at,
     finished_at, parent_run,
     tasks: [{name, execution, status, attempts, result, error, started_at, finished_at,
              items?: [{index, item, status, attempts, result, error}], child_run?, parallel?,
              compensates?}],
     inquiries: [{id, task, status, prompt, schema, assigned_to}],
     held_back?: [task names], compensation_pending?: [task names]}

One entry per task *execution*, in the order executions started; ``execution`` numbers
them. A compensation appears as a task named ``<task>~compensate`` whose ``compensates``
is the number of the execution it undoes. While a run is pausing or paused,
``held_back`` names the tasks whose work waits for the resume; while it is compensating,
``compensation_pending`` names the tasks still to undo, next first. Values of secret
parameters are replaced by ``***`` wherever they appear.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from treadle.common.redaction import REDACTED, redact, secret_values_of
from treadle.scheduler.core.namespaces import iso
from treadle.scheduler.core.state import ROOT_SCOPE, DeferredKind, Execution, RunState, Unit
from treadle.scheduler.store import InquiryEntry, UnitOfWork


def run_document(state: RunState, inquiries: Sequence[InquiryEntry] = ()) -> dict[str, Any]:
    """The run as users see it, secrets masked."""
    context = state.context
    secrets = secret_values_of([_secret_value(state, name) for name in context.secrets])
    parameters = {
        name: (REDACTED if name in context.secrets else value)
        for name, value in context.parameters.items()
    }
    document: dict[str, Any] = {
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
        "tasks": [_execution(state, state.executions[i]) for i in sorted(state.executions)],
        "inquiries": [_inquiry(entry) for entry in inquiries],
    }
    if state.deferred:
        document["held_back"] = _held_back(state)
    if state.compensation:
        document["compensation_pending"] = [
            state.executions[e].task for e in state.compensation if e in state.executions
        ]
    redacted: dict[str, Any] = redact(document, secrets)
    return redacted


def _secret_value(state: RunState, name: str) -> object:
    """A secret's value: ``name`` is a parameter name or ``keystore.<key>``."""
    if name.startswith("keystore."):
        return state.context.keystore.get(name.removeprefix("keystore."))
    return state.context.parameters.get(name)


def stored_run_document(uow: UnitOfWork, run_id: str) -> dict[str, Any]:
    """The run document of a stored run, with its inquiries (NotFound for an unknown id)."""
    return run_document(uow.load_run(run_id), uow.list_inquiries(run_id=run_id))


def _execution(state: RunState, execution: Execution) -> dict[str, Any]:
    units = execution.units
    entry: dict[str, Any] = {
        "name": execution.task,
        "execution": execution.id,
        "status": execution.status.value,
        "attempts": sum(unit.attempt for unit in units),
        "result": execution.result,
        "error": None if execution.error is None else dict(execution.error),
        "started_at": iso(execution.started_at),
        "finished_at": iso(execution.finished_at),
    }
    if execution.with_items:
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
        "status": entry.status.value,
        "prompt": entry.prompt,
        "schema": entry.schema,
        "assigned_to": entry.assigned_to,
    }
