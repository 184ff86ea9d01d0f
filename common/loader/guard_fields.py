"""The guard-rail fields of workflows and tasks: ``budget``, ``cost_estimate_usd``,
``cost_ceiling_usd`` and ``escalate``.

Each problem names its field and points at its line (``docs/governance.md`` describes
what the fields do).
"""

from __future__ import annotations

import math
from typing import Any, Final

from treadle.common.budget import BUDGET_FIELDS, Budget
from treadle.common.loader.reader import Reader
from treadle.common.source import Path
from treadle.common.spec import EscalationAskSpec, EscalationSpec

#: The fields of a task's ``escalate`` and of its ``ask``.
ESCALATE_FIELDS: Final = ("notify", "ask")
ASK_FIELDS: Final = ("prompt", "assigned_to", "timeout")


def read_budget(reader: Reader, value: Any, path: Path, what: str) -> Budget | None:
    """``{cost_usd, wall_time, attempts, items, soft_ratio, step_cost_usd}``, all optional."""
    entry = reader.mapping(value, path, f"'budget' of {what}")
    if entry is None:
        return None
    reader.check_fields(entry, path, f"the budget of {what}", BUDGET_FIELDS)
    fields: dict[str, Any] = {}
    for key in ("cost_usd", "step_cost_usd"):
        if key in entry:
            fields[key] = read_usd(reader, entry[key], (*path, key), f"'budget.{key}' of {what}")
    for key in ("attempts", "items"):
        fields[key] = reader.count(
            entry.get(key), (*path, key), f"'budget.{key}' of {what}", minimum=1
        )
    if "wall_time" in entry:
        wall = reader.duration(
            entry["wall_time"], (*path, "wall_time"), f"'budget.wall_time' of {what}"
        )
        if wall is not None and wall.total_seconds() <= 0:
            reader.error(
                (*path, "wall_time"),
                f"'budget.wall_time' of {what} must be longer than 0",
                at_value=True,
            )
            wall = None
        fields["wall_time"] = wall
    if "soft_ratio" in entry:
        fields["soft_ratio"] = _ratio(reader, entry["soft_ratio"], (*path, "soft_ratio"), what)
    given = {k: v for k, v in fields.items() if v is not None}
    return Budget(**given) if given else None


def read_usd(
    reader: Reader, value: Any, path: Path, what: str, *, unit: str = "US dollars"
) -> float | None:
    """An amount of US dollars (or of ``unit``): a number >= 0."""
    if value is None:
        return None
    if _number(value) and value >= 0:
        return float(value)
    reader.error(path, f"{what} must be an amount of {unit} (>= 0), not {value!r}", at_value=True)
    return None


def _ratio(reader: Reader, value: Any, path: Path, what: str) -> float | None:
    if _number(value) and 0 < value < 1:
        return float(value)
    reader.error(
        path,
        f"'budget.soft_ratio' of {what} must be a number between 0 and 1 (0.8: ask at 80%), "
        f"not {value!r}",
        at_value=True,
    )
    return None


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def read_escalate(reader: Reader, value: Any, path: Path, what: str) -> EscalationSpec | None:
    """``{notify: {core.notify input}, ask: {prompt, assigned_to, timeout}}``, one at least."""
    entry = reader.mapping(value, path, f"'escalate' of {what}")
    if entry is None:
        return None
    reader.check_fields(entry, path, f"the escalation of {what}", ESCALATE_FIELDS)
    if "notify" not in entry and "ask" not in entry:
        reader.error(path, f"'escalate' of {what} needs 'notify', 'ask' or both")
        return None
    notify = None
    if "notify" in entry:
        given = reader.mapping(entry["notify"], (*path, "notify"), f"'escalate.notify' of {what}")
        notify = {str(k): v for k, v in (given or {}).items()}
    ask = None
    if "ask" in entry:
        ask = _ask(reader, entry["ask"], (*path, "ask"), what)
    return EscalationSpec(notify=notify, ask=ask)


def _ask(reader: Reader, value: Any, path: Path, what: str) -> EscalationAskSpec | None:
    if value is True:
        return EscalationAskSpec()
    entry = reader.mapping(value, path, f"'escalate.ask' of {what}")
    if entry is None:
        return None
    reader.check_fields(entry, path, f"the escalation question of {what}", ASK_FIELDS)
    timeout = reader.duration(
        entry.get("timeout"), (*path, "timeout"), f"'escalate.ask.timeout' of {what}"
    )
    return EscalationAskSpec(
        prompt=entry.get("prompt"), assigned_to=entry.get("assigned_to"), timeout=timeout
    )
