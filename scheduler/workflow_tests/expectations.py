"""What a rehearsed run was expected to do, checked: every difference as a message.

The ``expect`` block of the project's scenario files and of users' workflow tests
(``tests/test_workflows.yaml`` in a pack) share these keys and this meaning
(``tests/scenarios/README.md``, ``docs/packs.md``). :func:`differences` returns one
message per key that does not hold, naming the key, what was expected and what the run
did, so a failure says what to look at. Pure.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any, Final

from treadle.scheduler.core.commands import RunStatusChanged
from treadle.scheduler.rehearsal import EPOCH, Rehearsal

#: Every key ``expect`` may hold.
EXPECT_KEYS: Final = frozenset(
    {
        "status",
        "sequence",
        "statuses",
        "tasks",
        "attempts",
        "results",
        "task_errors",
        "output",
        "error",
        "vars",
        "dispatched",
        "inputs",
        "commands",
        "clock_seconds",
        "budget",
    }
)
#: Keys whose value maps task names to what is expected of each.
PER_TASK_KEYS: Final = frozenset({"tasks", "attempts", "results", "task_errors", "inputs"})


def differences(record: Rehearsal, expect: Mapping[str, Any]) -> list[str]:
    """Each expectation in ``expect`` the rehearsed run ``record`` does not meet."""
    out: list[str] = []
    for key in sorted(expect, key=_ORDER.index):
        out.extend(_CHECKS[key](record, expect[key]))
    return out


def _status(record: Rehearsal, wanted: Any) -> list[str]:
    got = record.status.value
    if got == wanted:
        return []
    error = record.state.error
    why = f" ({error.get('type')}: {error.get('message')})" if error else ""
    return [f"status: expected {wanted}, got {got}{why}"]


def _sequence(record: Rehearsal, wanted: Any) -> list[str]:
    return _same("sequence", wanted, record.sequence)


def _statuses(record: Rehearsal, wanted: Any) -> list[str]:
    moves = [
        c.status.value
        for batch in record.commands
        for c in batch
        if isinstance(c, RunStatusChanged)
    ]
    return _same("statuses", wanted, moves)


def _tasks(record: Rehearsal, wanted: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for task, status in wanted.items():
        got = record.task_status(task)
        if got != status:
            shown = "never ran" if got is None else got
            out.append(f"tasks.{task}: expected {status or 'never ran'}, got {shown}")
    return out


def _attempts(record: Rehearsal, wanted: Mapping[str, Any]) -> list[str]:
    return _per_execution(record, wanted, "attempts", lambda e: sum(u.attempt for u in e.units))


def _results(record: Rehearsal, wanted: Mapping[str, Any]) -> list[str]:
    return _per_execution(record, wanted, "results", lambda e: e.result)


def _task_errors(record: Rehearsal, wanted: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for task, error in wanted.items():
        execution = record.state.latest_execution(task)
        if execution is None:
            out.append(f"task_errors.{task}: task '{task}' never ran")
        else:
            out.extend(_error(f"task_errors.{task}", execution.error, error))
    return out


def _output(record: Rehearsal, wanted: Any) -> list[str]:
    return _same("output", wanted, record.state.output)


def _run_error(record: Rehearsal, wanted: Any) -> list[str]:
    return _error("error", record.state.error, wanted)


def _vars(record: Rehearsal, wanted: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for name, value in wanted.items():
        out.extend(_same(f"vars.{name}", value, record.state.vars.get(name)))
    return out


def _dispatched(record: Rehearsal, wanted: Any) -> list[str]:
    return _same("dispatched", wanted, len(record.dispatched))


def _inputs(record: Rehearsal, wanted: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for task, inputs in wanted.items():
        given = [dict(d.dispatch.input) for d in record.dispatched if d.dispatch.task == task]
        out.extend(_same(f"inputs.{task}", inputs, given))
    return out


def _commands(record: Rehearsal, wanted: Mapping[str, Any]) -> list[str]:
    counts = Counter(c.kind for batch in record.commands for c in batch)
    out: list[str] = []
    for kind, count in wanted.items():
        out.extend(_same(f"commands.{kind}", count, counts[kind]))
    return out


def _clock(record: Rehearsal, wanted: Any) -> list[str]:
    elapsed = (record.events[-1][1] - EPOCH).total_seconds() if record.events else 0.0
    if math.isclose(elapsed, float(wanted), rel_tol=1e-6, abs_tol=1e-6):
        return []
    return [f"clock_seconds: expected {wanted}, got {elapsed:g}"]


def _budget(record: Rehearsal, wanted: Any) -> list[str]:
    """The run's budget (limits, what it used, ``stop``: the kind that stopped it or null),
    only the keys listed; ``budget: null``: the run has none."""
    budget = record.state.budget
    if wanted is None:
        return [] if budget is None else ["budget: expected none, the run has a budget"]
    if budget is None:
        return [f"budget: expected {_show(wanted)}, the run has no budget"]
    got: dict[str, Any] = {
        **budget.limits().as_json(),
        "spent_usd": budget.spent_usd,
        "attempts_made": budget.attempts_made,
        "items_started": budget.items_started,
        "stop": None if budget.stop is None else budget.stop.kind.value,
    }
    out: list[str] = []
    for key, value in wanted.items():
        out.extend(_same(f"budget.{key}", value, got.get(key)))
    return out


def _per_execution(
    record: Rehearsal, wanted: Mapping[str, Any], key: str, value: Callable[[Any], Any]
) -> list[str]:
    out: list[str] = []
    for task, expected in wanted.items():
        execution = record.state.latest_execution(task)
        if execution is None:
            out.append(f"{key}.{task}: task '{task}' never ran")
        else:
            out.extend(_same(f"{key}.{task}", expected, value(execution)))
    return out


def _error(what: str, actual: Mapping[str, Any] | None, wanted: Any) -> list[str]:
    if wanted is None:
        return [] if actual is None else [f"{what}: expected none, got {_show(actual)}"]
    if actual is None:
        return [f"{what}: expected {_show(wanted)}, got none"]
    out: list[str] = []
    for field in ("type", "message", "task"):
        if field in wanted and actual.get(field) != wanted[field]:
            out.append(
                f"{what}.{field}: expected {_show(wanted[field])}, got {_show(actual.get(field))}"
            )
    if "contains" in wanted and str(wanted["contains"]) not in str(actual.get("message")):
        out.append(
            f"{what}.message: expected it to contain {_show(wanted['contains'])}, "
            f"got {_show(actual.get('message'))}"
        )
    return out


def _same(what: str, wanted: Any, got: Any) -> list[str]:
    """Nothing when equal; else where they differ: each differing key of two mappings
    (and each item of two lists of mappings of one length), down to the values."""
    if wanted == got or _canonical(wanted) == _canonical(got):  # tuples equal lists
        return []
    if isinstance(wanted, Mapping) and isinstance(got, Mapping):
        out: list[str] = []
        for key in sorted(set(wanted) | set(got), key=str):
            if key not in got:
                out.append(f"{what}.{key}: expected {_show(wanted[key])}, got nothing")
            elif key not in wanted:
                out.append(f"{what}.{key}: expected nothing, got {_show(got[key])}")
            else:
                out.extend(_same(f"{what}.{key}", wanted[key], got[key]))
        return out
    if (
        isinstance(wanted, list)
        and isinstance(got, list | tuple)
        and len(wanted) == len(got)
        and any(isinstance(item, Mapping) for item in wanted)
    ):
        return [
            problem
            for index, (left, right) in enumerate(zip(wanted, got, strict=True))
            for problem in _same(f"{what}[{index}]", left, right)
        ]
    return [f"{what}: expected {_show(wanted)}, got {_show(got)}"]


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def _show(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str, ensure_ascii=False)
    return text if len(text) <= 300 else text[:297] + "..."


_CHECKS: Final[dict[str, Callable[[Rehearsal, Any], list[str]]]] = {
    "status": _status,
    "sequence": _sequence,
    "statuses": _statuses,
    "tasks": _tasks,
    "attempts": _attempts,
    "results": _results,
    "task_errors": _task_errors,
    "output": _output,
    "error": _run_error,
    "vars": _vars,
    "dispatched": _dispatched,
    "inputs": _inputs,
    "commands": _commands,
    "clock_seconds": _clock,
    "budget": _budget,
}
_ORDER: Final = list(_CHECKS)
assert set(_CHECKS) == EXPECT_KEYS
