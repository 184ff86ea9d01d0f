"""A run's golden record: JSON lines an AOS golden file has, plus what replaying needs.

The lines, in this order (``docs/determinism.md`` describes every field):

* ``run_start``: the run id, ``spec_id`` (the workflow), the definition version, dialect,
  seed, ``replay`` (always false: a recorded run), parameters, when the run was created
  and started, and the **definition itself** (the canonical spec and each action's route,
  as the version stores them) with its digest, so a record replays without a database;
* one ``step`` per task execution: index, ``step_id`` (the task), action, seed, params (the
  rendered input it was given), status, output and its digest, error, cost in cents,
  retries, times;
* one ``event`` per entry of the run's event log: its sequence number, when the core was
  told, the event, and the ``commands`` ``decide`` produced for it;
* ``run_end``: the final status, output and error, the counts of steps and events, and a
  digest over every decision.

Everything but the run's identity, the definition and the event log is derived: replaying
the events through ``decide`` gives it back (:mod:`.verify`), so a record that is edited
but still replays would have to be edited consistently, and its signature catches that.
Secret values never appear: runs hold references to secrets, never their values, and the
default of a ``secret`` parameter is masked in the definition (``***``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from treadle.common.redaction import REDACTED
from treadle.common.statuses import TaskStatus
from treadle.scheduler.core.namespaces import iso
from treadle.scheduler.core.state import Execution
from treadle.scheduler.service.renderings.history import StoredRun
from treadle.scheduler.service.renderings.v1_steps import cost_of
from treadle.scheduler.store.decision_codec import encode_command, encode_event

#: The version of the record's format, in ``run_start``.
SCHEMA_VERSION: Final = "2.0"


def golden_lines(run: StoredRun) -> list[dict[str, Any]]:
    """The record of ``run``: ``run_start``, the steps, the events, ``run_end`` (JSON-able)."""
    state = run.state
    decisions = [[encode_command(c) for c in d.commands] for d in run.decisions]
    definition = {
        "spec": _without_secret_defaults(
            run.pinned.spec.model_dump(mode="json", exclude={"source"})
        ),
        "routes": {ref: route.as_json() for ref, route in sorted(run.pinned.routes.items())},
    }
    lines: list[dict[str, Any]] = [
        {
            "type": "run_start",
            "schema_version": SCHEMA_VERSION,
            "run_id": state.run_id,
            "spec_id": state.workflow,
            "definition_version": run.pinned.version,
            "dialect": run.pinned.spec.dialect,
            "seed": state.context.seed,
            "replay": False,
            "parameters": _plain(state.context.parameters),
            "created_at": iso(state.created_at),
            "started_at": iso(state.started_at),
            "definition": definition,
            "definition_digest": digest(definition),
        }
    ]
    executions = [state.executions[key] for key in sorted(state.executions)]
    lines.extend(_step(run, index, execution) for index, execution in enumerate(executions))
    lines.extend(
        {
            "type": "event",
            "seq": recorded.seq,
            "at": iso(recorded.at),
            "event": encode_event(recorded.event),
            "commands": commands,
        }
        for recorded, commands in zip(run.events, decisions, strict=True)
    )
    lines.append(
        {
            "type": "run_end",
            "status": state.status.value,
            "completed_at": iso(state.finished_at) if state.status.is_terminal else None,
            "output": state.output,
            "error": None if state.error is None else dict(state.error),
            "steps": len(executions),
            "events": len(run.events),
            "decisions_digest": digest(decisions),
        }
    )
    return [_plain(line) for line in lines]


def golden_bytes(lines: Sequence[Mapping[str, Any]]) -> bytes:
    """The record as a file holds it: one JSON object per line, UTF-8, newline-ended."""
    return "".join(_line(line) + "\n" for line in lines).encode("utf-8")


def digest(value: Any) -> str:
    """SHA-256 of ``value`` as canonical JSON (sorted keys, no spaces)."""
    return hashlib.sha256(_canonical(value).encode("utf-8")).hexdigest()


def _step(run: StoredRun, index: int, execution: Execution) -> dict[str, Any]:
    node = run.pinned.graph.nodes.get(execution.task)
    attempts = sum(unit.attempt for unit in execution.units)
    params: Any = run.first_input(execution.id)
    if params is None and execution.inquiry_id is not None:
        question = run.questions.get(execution.inquiry_id)
        params = None if question is None else {"prompt": question.prompt}
    if params is None and execution.units and execution.units[0].waits_for is not None:
        params = dict(execution.units[0].waits_for)
    seed = params.get("seed") if isinstance(params, Mapping) else None
    duration = None
    if execution.finished_at is not None:
        duration = (execution.finished_at - execution.started_at).total_seconds() * 1000
    return {
        "type": "step",
        "index": index,
        "step_id": execution.task,
        "action": None if node is None else node.spec.action,
        "seed": seed if isinstance(seed, int) and not isinstance(seed, bool) else None,
        "params": params,
        "status": execution.status.value,
        "ok": execution.status in (TaskStatus.SUCCEEDED, TaskStatus.COMPENSATED),
        "output": execution.result,
        "output_digest": digest(execution.result),
        "error": None if execution.error is None else dict(execution.error),
        "cost_cents": round(cost_of(execution.result) * 100, 6),
        "retries": max(attempts - 1, 0),
        "started_at": iso(execution.started_at),
        "finished_at": iso(execution.finished_at),
        "duration_ms": duration,
    }


def _without_secret_defaults(spec: dict[str, Any]) -> dict[str, Any]:
    """The spec with each secret parameter's default masked: a run resolved its
    parameters when it started (its context holds references), so replaying never reads
    them, and a record never shows a secret."""
    for parameter in spec.get("parameters") or ():
        if parameter.get("secret") and parameter.get("default") is not None:
            parameter["default"] = REDACTED
    return dict(json.loads(_canonical(spec)))


def _plain(value: Any) -> Any:
    """``value`` as JSON gives it back (tuples become lists), so a record built here
    equals the same record read from its file."""
    return json.loads(json.dumps(value, ensure_ascii=False, default=str))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _line(line: Mapping[str, Any]) -> str:
    return json.dumps(line, separators=(",", ":"), ensure_ascii=False)
