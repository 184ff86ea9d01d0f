"""A run in the shape of an AOS execution result: ``{"status": "ok", "steps": [...], ...}``.

Each step of the plan (each top-level task, for definitions written in another dialect)
reports its skill, whether it succeeded (``ok``), its output and a hash of the output
(SHA-256 of the output's canonical JSON, so equal outputs hash alike across runs), the
retries it took and its error. The run's ``status`` is ``ok`` when it succeeded, ``error``
when it failed or timed out, ``cancelled`` when cancelled, and Treadle's status otherwise
(``running``, ``paused``...). ``workflow_hash`` is the hash of the definition as stored.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final

from treadle.common.dialects.shared import AOS_METADATA
from treadle.common.statuses import RunStatus, TaskStatus
from treadle.scheduler.core.namespaces import iso
from treadle.scheduler.service.definitions import canonical_spec
from treadle.scheduler.service.renderings.history import StoredRun

STATUSES: Final = {
    RunStatus.SUCCEEDED: "ok",
    RunStatus.FAILED: "error",
    RunStatus.TIMED_OUT: "error",
    RunStatus.CANCELED: "cancelled",
}


def digest(value: Any) -> str:
    """SHA-256 of ``value`` as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def aos_run(run: StoredRun) -> dict[str, Any]:
    """The run as an AOS execution result."""
    state = run.state
    spec = run.pinned.spec
    plan = spec.metadata.get(AOS_METADATA, {})
    steps: list[dict[str, Any]] = []
    for name, node in run.pinned.graph.nodes.items():
        if node.scope is not None or node.hidden:
            continue
        execution = state.latest_execution(name)
        entry: dict[str, Any] = {"step_id": name, "skill": node.spec.action}
        if execution is None:
            entry.update(ok=None, status="skipped" if state.status.is_terminal else "pending")
            steps.append(entry)
            continue
        entry["ok"] = execution.status is TaskStatus.SUCCEEDED
        entry["status"] = execution.status.value
        entry["output"] = execution.result
        entry["output_hash"] = digest(execution.result)
        entry["retries"] = max(sum(unit.attempt for unit in execution.units) - 1, 0)
        if execution.error is not None:
            entry["error"] = dict(execution.error)
        steps.append(entry)
    record: dict[str, Any] = {
        "run_id": state.run_id,
        "workflow": spec.ref,
        "status": STATUSES.get(state.status, state.status.value),
        "steps": steps,
        "workflow_hash": digest(json.loads(canonical_spec(spec))),
        "seed": state.context.seed,
        "started_at": iso(state.started_at),
        "completed_at": iso(state.finished_at) if state.status.is_terminal else None,
    }
    if isinstance(plan, dict) and plan.get("plan_id"):
        record["plan_id"] = plan["plan_id"]
    if state.error is not None:
        record["error"] = dict(state.error)
    return record
