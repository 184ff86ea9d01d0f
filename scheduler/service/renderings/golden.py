"""The golden record of a run: what it did, step by step, and the decisions that did it.

A golden record holds the same information as an AOS golden trace — the run id, its seed,
status and times, and per step its index, action, params (the rendered input it was
given), status, outputs, cost and retries — plus what makes it checkable: the run's event
log and, for each event, the commands ``decide`` produced, with a digest over them.

:func:`verify_golden` replays the recorded events through ``decide`` against a definition
and reports every decision that differs. Because the core is pure (the clock and the seed
are inputs), a record replays to the same decisions as long as the engine's rules and the
definition are unchanged: that is the golden-file check for determinism.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from treadle.common.graph import Graph
from treadle.common.statuses import TaskStatus
from treadle.scheduler.core.decide import decide
from treadle.scheduler.core.namespaces import iso
from treadle.scheduler.core.state import Execution, initial_state
from treadle.scheduler.service.renderings.history import StoredRun
from treadle.scheduler.service.renderings.v1_steps import cost_of
from treadle.scheduler.store.codec import decode_datetime
from treadle.scheduler.store.decision_codec import decode_event, encode_command, encode_event

SCHEMA_VERSION: Final = "1.0.0"


def golden_record(run: StoredRun) -> dict[str, Any]:
    """The golden record of ``run`` (JSON-able)."""
    state = run.state
    decisions = [[encode_command(c) for c in d.commands] for d in run.decisions]
    return {
        "schema_version": SCHEMA_VERSION,
        "run_id": state.run_id,
        "workflow": state.workflow,
        "definition_version": run.pinned.version,
        "dialect": run.pinned.spec.dialect,
        "seed": state.context.seed,
        "status": state.status.value,
        "created_at": iso(state.created_at),
        "started_at": iso(state.started_at),
        "completed_at": iso(state.finished_at) if state.status.is_terminal else None,
        "parameters": dict(state.context.parameters),
        "output": state.output,
        "steps": [
            _step(run, index, state.executions[execution_id])
            for index, execution_id in enumerate(sorted(state.executions))
        ],
        "events": [
            {"seq": recorded.seq, "at": iso(recorded.at), "event": encode_event(recorded.event)}
            for recorded in run.events
        ],
        "decisions": decisions,
        "decisions_digest": decisions_digest(decisions),
    }


def decisions_digest(decisions: Sequence[Sequence[Mapping[str, Any]]]) -> str:
    """SHA-256 over the decisions as canonical JSON."""
    text = json.dumps(decisions, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def verify_golden(record: Mapping[str, Any], graph: Graph) -> list[str]:
    """Replay ``record``'s events through ``decide`` on ``graph``; every difference found.

    An empty list means the replay reproduced every recorded decision and the final status.
    """
    problems: list[str] = []
    created = record.get("created_at")
    events = record.get("events") or []
    first = decode_datetime(events[0]["at"]) if events else datetime.fromtimestamp(0)
    state = initial_state(
        str(record["run_id"]),
        graph.ref,
        decode_datetime(created) if created else first,
        record.get("definition_version"),
    )
    recorded = list(record.get("decisions") or [])
    if len(recorded) != len(events):
        problems.append(f"the record has {len(events)} events but {len(recorded)} decisions")
    for index, entry in enumerate(events):
        event = decode_event(entry["event"])
        decision = decide(state, event, graph, decode_datetime(entry["at"]))
        state = decision.state
        produced = [encode_command(command) for command in decision.commands]
        expected = recorded[index] if index < len(recorded) else None
        if _canonical(produced) != _canonical(expected):
            problems.append(
                f"event {index + 1} ({event.kind}): replay gave "
                f"{_kinds(produced)}, the record has {_kinds(expected or [])}"
                + _first_difference(produced, expected or [])
            )
    if state.status.value != record.get("status"):
        problems.append(
            f"the replayed run ends {state.status.value}, the record says {record.get('status')}"
        )
    return problems


def _step(run: StoredRun, index: int, execution: Execution) -> dict[str, Any]:
    node = run.pinned.graph.nodes.get(execution.task)
    attempts = sum(unit.attempt for unit in execution.units)
    params: Any = run.first_input(execution.id)
    if params is None and execution.inquiry_id is not None:
        question = run.questions.get(execution.inquiry_id)
        params = None if question is None else {"prompt": question.prompt}
    if params is None and execution.units and execution.units[0].waits_for is not None:
        params = dict(execution.units[0].waits_for)
    duration = None
    if execution.finished_at is not None:
        duration = (execution.finished_at - execution.started_at).total_seconds() * 1000
    return {
        "index": index,
        "task": execution.task,
        "action": None if node is None else node.spec.action,
        "params": params,
        "status": execution.status.value,
        "ok": execution.status in (TaskStatus.SUCCEEDED, TaskStatus.COMPENSATED),
        "outputs": execution.result,
        "error": None if execution.error is None else dict(execution.error),
        "cost_cents": round(cost_of(execution.result) * 100, 6),
        "retries": max(attempts - 1, 0),
        "started_at": iso(execution.started_at),
        "finished_at": iso(execution.finished_at),
        "duration_ms": duration,
    }


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _kinds(commands: Sequence[Mapping[str, Any]]) -> str:
    return "[" + ", ".join(str(c.get("kind")) for c in commands) + "]"


def _first_difference(
    produced: Sequence[Mapping[str, Any]], expected: Sequence[Mapping[str, Any]]
) -> str:
    for position, (mine, theirs) in enumerate(zip(produced, expected, strict=False)):
        if _canonical(mine) != _canonical(theirs):
            return f"; command {position + 1} differs: {_canonical(mine)} != {_canonical(theirs)}"
    return ""
