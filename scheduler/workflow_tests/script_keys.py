"""The keys of a workflow test that shape its run besides results and answers: budgets
and controls, with the names and the meaning of the project's scenario files
(``tests/scenarios/README.md``).

* ``budget``: the budget the start gives (each limit it sets wins over the workflow's,
  as ``treadle run --budget`` does);
* ``budget_ceiling``: the workspace's ceiling (``TREADLE_BUDGET_LIMITS``), which caps
  every limit the run has;
* ``budget_answers``: the answers, in order, to the run's budget inquiries (the question
  a soft ratio asks), each ``{continue: true}`` or ``{continue: false}``;
* ``controls``: what an operator (or the outside world) does at a number of seconds after
  the start: ``{at, do: pause|resume|cancel|retry|compensate}``, ``{at, do: resume,
  budget: {...}}`` (new limits, then the resume, as ``treadle runs resume --budget``),
  ``{at, do: retry, task: NAME}`` (a retry from that task) or ``{at, event: {type, id,
  subject, data}}`` (an outside event).

Each is checked before anything runs, every problem an issue at its field naming the
test and the key (``test 'x': budget: cost_usd: ...``). Pure.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from treadle.common.budget import Budget, checked_budget
from treadle.common.errors import ParameterError
from treadle.common.loader.reader import Reader, suggestion
from treadle.common.source import Path
from treadle.scheduler.core.events import Event
from treadle.scheduler.workflow_tests.scripted_run import CONTROLS, parse_controls

__all__ = ["CONTROL_FIELDS", "EVENT_FIELDS", "SCRIPT_KEYS", "ScriptKeys"]

#: The test fields read here.
SCRIPT_KEYS: Final = ("budget", "budget_ceiling", "budget_answers", "controls")
#: The fields of one control.
CONTROL_FIELDS: Final = ("at", "do", "budget", "task", "event")
#: The fields of a control's outside event.
EVENT_FIELDS: Final = ("type", "id", "subject", "data")
_ANSWER: Final = "{continue: true} or {continue: false}"
_CONTROL: Final = "{at, do} or {at, event}"


@dataclass(frozen=True)
class ScriptKeys:
    """Reads the keys of one test (at ``path``, called ``label`` in messages) whose
    workflow has ``tasks`` (empty when the workflow could not be read)."""

    reader: Reader
    path: Path
    label: str
    tasks: frozenset[str]

    def error(self, path: Path, message: str) -> None:
        self.reader.error(path, f"{self.label}: {message}")

    def budget(self, data: Mapping[Any, Any], key: str) -> Budget | None:
        """``budget`` or ``budget_ceiling``; None when absent or wrong."""
        return self._budget(data.get(key), (*self.path, key), key)

    def budget_answers(self, data: Mapping[Any, Any]) -> tuple[Any, ...]:
        """The answers to the run's budget inquiries, each checked as the inquiry's schema
        (``scheduler/core/budgets.py`` ``CONTINUE_SCHEMA``) checks a person's answer."""
        key = "budget_answers"
        value = data.get(key)
        path = (*self.path, key)
        if value is None:
            return ()
        if not isinstance(value, list):
            self.error(path, f"{key} must be a list of answers, each {_ANSWER}")
            return ()
        for index, answer in enumerate(value):
            if not (isinstance(answer, Mapping) and isinstance(answer.get("continue"), bool)):
                self.error(
                    (*path, index),
                    f"{key}[{index}]: the run's budget inquiry takes {_ANSWER}, not "
                    f"{_shown(answer)}",
                )
        return tuple(value)

    def controls(self, data: Mapping[Any, Any]) -> tuple[tuple[float, Event], ...]:
        """The controls and events, as ``(seconds after the start, event)``."""
        value = data.get("controls")
        path = (*self.path, "controls")
        if value is None:
            return ()
        if not isinstance(value, list):
            self.error(path, f"controls must be a list, each {_CONTROL}")
            return ()
        found: list[tuple[float, Event]] = []
        for index, entry in enumerate(value):
            found += self._control((*path, index), f"controls[{index}]", entry)
        return tuple(found)

    def _control(self, path: Path, what: str, entry: Any) -> list[tuple[float, Event]]:
        before = len(self.reader.issues)
        data = self.reader.mapping(entry, path, f"{self.label}: {what}")
        if data is None:
            if entry is None:
                self.error(path, f"{what}: an empty entry; a control is {_CONTROL}")
            return []
        self.reader.check_fields(data, path, f"{self.label}: {what}", CONTROL_FIELDS)
        self._at(data, path, what)
        if "do" in data and "event" in data:
            self.error(path, f"{what} takes 'do' or 'event', not both")
        elif "do" not in data and "event" not in data:
            self.error(
                path,
                f"{what} needs one of 'do' ({', '.join(CONTROLS)}) or 'event' (an outside event)",
            )
        if "do" in data:
            self.reader.choice(data["do"], (*path, "do"), f"{self.label}: {what}.do", CONTROLS)
        if "budget" in data:
            if data.get("do") == "resume":
                self._budget(data["budget"], (*path, "budget"), f"{what}.budget")
            else:
                self.error(
                    (*path, "budget"),
                    f"{what}.budget: only a resume (do: resume) sets new budget limits",
                )
        if "task" in data:
            self._task(data, path, what)
        if "event" in data:
            self._event(data["event"], (*path, "event"), f"{what}.event")
        if len(self.reader.issues) > before:
            return []
        return parse_controls(data)

    def _at(self, data: Mapping[Any, Any], path: Path, what: str) -> None:
        at = data.get("at")
        if "at" not in data:
            self.error(path, f"{what} needs 'at' (the seconds after the start it happens at)")
        elif isinstance(at, bool) or not isinstance(at, int | float) or not 0 <= at < math.inf:
            self.error(
                (*path, "at"), f"{what}.at must be a number of seconds >= 0, not {_shown(at)}"
            )

    def _task(self, data: Mapping[Any, Any], path: Path, what: str) -> None:
        task = data["task"]
        if data.get("do") != "retry":
            self.error((*path, "task"), f"{what}.task: only a retry (do: retry) names a task")
        elif not isinstance(task, str):
            self.error((*path, "task"), f"{what}.task must be a task's name, not {_shown(task)}")
        elif self.tasks and task not in self.tasks:
            hint = suggestion(task, self.tasks)
            self.error((*path, "task"), f"{what}.task: the workflow has no task '{task}'{hint}")

    def _event(self, value: Any, path: Path, what: str) -> None:
        event = self.reader.mapping(value, path, f"{self.label}: {what}")
        if event is None:
            if value is None:
                self.error(path, f"{what} needs at least a 'type'")
            return
        self.reader.check_fields(event, path, f"{self.label}: {what}", EVENT_FIELDS)
        kind = event.get("type")
        if not isinstance(kind, str) or not kind:
            self.error(path, f"{what} needs a 'type': the event type, as text")
        for name in ("id", "subject"):
            if event.get(name) is not None and not isinstance(event[name], str):
                self.error((*path, name), f"{what}.{name} must be text, not {_shown(event[name])}")

    def _budget(self, value: Any, path: Path, what: str) -> Budget | None:
        if value is None:
            return None
        try:
            return checked_budget(value, subject=what)
        except ParameterError as exc:
            for problem in exc.problems:
                field = problem.split(":", 1)[0]
                where = (*path, field) if isinstance(value, Mapping) and field in value else path
                self.error(where, f"{what}: {problem}")
            return None


def _shown(value: Any) -> str:
    try:
        return json.dumps(value, sort_keys=True, default=str)
    except ValueError:  # pragma: no cover - YAML data is JSON-ready but for NaN
        return repr(value)
