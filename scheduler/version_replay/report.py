"""Where a new version decides differently from the recorded run, step by step.

The two traces (the recorded run on its own definition, the same facts fed to the new
one) are compared step by step, in the order the steps started. A step is *removed* when
only the recorded run has it, *added* when only the new version has it; a step both have
can differ in its action, the input of a call, the variables it published or the status it
ended with. A call the record holds no outcome for ends its branch (it is *new*). The run
itself can end with another status or output. Each difference has a :class:`Cause`, the
label ``treadle_replay_divergences_total`` counts it under. Pure.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from treadle.scheduler.version_replay.keys import CallKey, StepKey
from treadle.scheduler.version_replay.steps import CallPlace, StepTrace

ABSENT = "(absent)"
#: The input field that carries a step's own seed (AOS steps: ``docs/dialects.md``).
SEED_INPUT = "seed"


class Change(StrEnum):
    """What differs."""

    ADDED = "added"  # the new version runs a step the recorded run did not
    REMOVED = "removed"  # the recorded run ran a step the new version does not
    NEW_CALL = "new call"  # a call the record has no outcome for: its branch ends
    ACTION = "action"
    INPUT = "input"
    PUBLISHED = "published"
    STATUS = "status"
    RUN = "run"  # the run's status or output


class Cause(StrEnum):
    """Why a replay diverged, as the metric ``treadle_replay_divergences_total{cause}``
    names it: the :class:`Change`, with a per-step seed set apart (an input field named
    ``seed`` that differs: the step's seed no longer derives as it did)."""

    ADDED = "added"
    REMOVED = "removed"
    NEW_CALL = "new_call"
    ACTION = "action"
    INPUT = "input"
    SEED = "seed"
    PUBLISHED = "published"
    STATUS = "status"
    RUN = "run"


@dataclass(frozen=True)
class Divergence:
    """One difference: the step (or ``run``), what differs, recorded and new values.
    ``path`` is the path of the input field that differs (``input`` only)."""

    step: str
    change: Change
    what: str
    recorded: Any
    new: Any
    path: str = dataclasses.field(default="", compare=False)

    @property
    def cause(self) -> Cause:
        if self.change is Change.INPUT and self.path.split(".", 1)[0] == SEED_INPUT:
            return Cause.SEED
        return Cause(self.change.value.replace(" ", "_"))

    def __str__(self) -> str:
        if self.change in (Change.ADDED, Change.REMOVED, Change.NEW_CALL):
            return f"{self.step}: {self.change}: {self.what}"
        if self.change is Change.RUN:
            return f"run {self.what}: recorded {_show(self.recorded)}, new {_show(self.new)}"
        if not self.what:
            return f"{self.step}: {self.change}: recorded {_show(self.recorded)}, new " + _show(
                self.new
            )
        return (
            f"{self.step}: {self.change} {self.what}: recorded {_show(self.recorded)}, "
            f"new {_show(self.new)}"
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "step": self.step,
            "change": self.change.value,
            "what": self.what,
            "recorded": self.recorded,
            "new": self.new,
            "cause": self.cause.value,
            "message": str(self),
        }


def divergences(
    recorded: Mapping[StepKey, StepTrace],
    new: Mapping[StepKey, StepTrace],
    unanswered: Iterable[tuple[CallKey, datetime]],
    runs: tuple[Mapping[str, Any], Mapping[str, Any]],
) -> list[Divergence]:
    """Every difference, step by step in the order the steps started, then the run's."""
    new_calls: dict[StepKey, list[CallKey]] = {}
    for call, _ in unanswered:
        new_calls.setdefault(StepKey(call.task, call.pass_), []).append(call)
    keys = sorted(
        set(recorded) | set(new),
        key=lambda k: ((new.get(k) or recorded[k]).started, str(k)),
    )
    out: list[Divergence] = []
    for key in keys:
        old, mine = recorded.get(key), new.get(key)
        if mine is None:
            assert old is not None
            out.append(
                Divergence(
                    str(key), Change.REMOVED, f"the recorded run ran it ({old.action}, "
                    f"{old.status}); the new version does not", old.status, None,
                )
            )  # fmt: skip
            continue
        if old is None:
            out.append(
                Divergence(
                    str(key), Change.ADDED, f"the new version runs it ({mine.action}); the "
                    "record has no result for it, so its branch of the replay ends here",
                    None, mine.status,
                )
            )  # fmt: skip
            continue
        out.extend(_step(key, old, mine, new_calls.get(key, [])))
    out.extend(_run(*runs))
    return out


def _step(key: StepKey, old: StepTrace, mine: StepTrace, calls: list[CallKey]) -> list[Divergence]:
    name = str(key)
    out: list[Divergence] = []
    if old.action != mine.action:
        out.append(Divergence(name, Change.ACTION, "", old.action, mine.action))
    unanswered = {(call.item, call.attempt) for call in calls}
    for place in sorted(set(old.inputs) | set(mine.inputs), key=_place_order):
        before, after = old.inputs.get(place, ABSENT), mine.inputs.get(place, ABSENT)
        if after is ABSENT or place in unanswered:
            continue  # a call only one side made: its step's status or new call says so
        for path, x, y in _paths(before, after):
            out.append(Divergence(name, Change.INPUT, _where(place, path), x, y, path))
    for call in calls:
        where = _where((call.item, call.attempt), "")
        out.append(
            Divergence(
                name, Change.NEW_CALL, f"{where.strip()}: the record has no result for this "
                "call, so its branch of the replay ends here", None, None,
            )
        )  # fmt: skip
    for variable in sorted(set(old.published) | set(mine.published)):
        before = old.published.get(variable, ABSENT)
        after = mine.published.get(variable, ABSENT)
        if _canonical(before) != _canonical(after):
            out.append(Divergence(name, Change.PUBLISHED, variable, before, after))
    if old.status != mine.status and not calls:
        out.append(Divergence(name, Change.STATUS, "", old.status, mine.status))
    return out


def _run(old: Mapping[str, Any], mine: Mapping[str, Any]) -> list[Divergence]:
    """The run's status, and its output when the new run ended (one that did not has
    none: its status says so)."""
    fields = ("status", "output") if mine.get("ended") else ("status",)
    return [
        Divergence("run", Change.RUN, field, old.get(field), mine.get(field))
        for field in fields
        if _canonical(old.get(field)) != _canonical(mine.get(field))
    ]


def _paths(x: Any, y: Any, path: str = "") -> list[tuple[str, Any, Any]]:
    if isinstance(x, Mapping) and isinstance(y, Mapping):
        found: list[tuple[str, Any, Any]] = []
        for key in sorted(set(x) | set(y), key=str):
            found += _paths(x.get(key, ABSENT), y.get(key, ABSENT), f"{path}.{key}")
        return found
    return [] if _canonical(x) == _canonical(y) else [(path.lstrip("."), x, y)]


def _where(place: CallPlace, path: str) -> str:
    item, attempt = place
    call = f"attempt {attempt}" if item is None else f"item {item}, attempt {attempt}"
    return f"{path} ({call})" if path else f"({call})"


def _place_order(place: CallPlace) -> tuple[int, int]:
    item, attempt = place
    return (-1 if item is None else item, attempt)


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _show(value: Any) -> str:
    if value is ABSENT:
        return str(value)
    text = _canonical(value)
    return text if len(text) <= 200 else text[:197] + "..."
