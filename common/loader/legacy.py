"""Attune's older transition fields, converted to ``next`` transitions.

A task's transitions are, in order:

1. its own ``next`` entries;
2. its task-level ``publish``, as ``{when: succeeded(), publish: [...]}`` with no targets, so
   that the conditions after it can read what it published;
3. the legacy keys in the order they appear in the file:

   * ``on_success`` / ``on_failure`` / ``on_timeout`` / ``on_complete``: a task name, a list
     of names, or a list of ``{when, do}`` entries (names and entries may mix), under
     ``succeeded()`` / ``failed()`` / ``timed_out()`` / no status condition;
   * ``decision: [{when: c1, next: t1}, ..., {default: tn}]``: the first entry whose
     condition holds (after ``succeeded()``) wins.

A task may have both ``next`` and legacy keys; all of them apply.
"""

from __future__ import annotations

from typing import Any

from treadle.common.loader.reader import Reader
from treadle.common.loader.transitions import ALWAYS, STATUS, TransitionReader, read_publish
from treadle.common.source import Path
from treadle.common.spec import TransitionSpec

#: Task fields this module converts.
LEGACY_FIELDS = ("publish", "on_success", "on_failure", "on_timeout", "on_complete", "decision")

_ENTRY_FIELDS = ("when", "publish", "do", "next")


def task_transitions(
    reader: Reader, task: dict[Any, Any], path: Path, name: str
) -> tuple[TransitionSpec, ...]:
    """Every transition of ``task`` (at ``path``), native and converted, in firing order."""
    out = TransitionReader(reader, name)
    native = task.get("next")
    if isinstance(native, list):
        for index, entry in enumerate(native):
            out.entry(entry, (*path, "next", index), ALWAYS, allowed=("when", "publish", "do"))
    elif native is not None:
        reader.error(
            (*path, "next"),
            f"'next' of task '{name}' must be a list of {{when, publish, do}} entries",
        )
    if "publish" in task:
        publish = read_publish(reader, task["publish"], (*path, "publish"), name)
        if publish:
            out.emit((*path, "publish"), ALWAYS.status("succeeded()"), (), publish)
    for key, value in task.items():
        if key in STATUS:
            _on_status(out, value, (*path, key), STATUS[key])
        elif key == "decision":
            entries = value
            if not isinstance(entries, list):
                reader.error(
                    (*path, key),
                    f"'decision' of task '{name}' must be a list of {{when, next}} entries "
                    "ending with {default: task}",
                )
                continue
            items = [(entry, (*path, key, index)) for index, entry in enumerate(entries)]
            out.chain(items, ALWAYS.status("succeeded()"), what="'decision'")
    return tuple(out.out)


def _on_status(out: TransitionReader, value: Any, path: Path, status: str | None) -> None:
    condition = ALWAYS.status(status)
    if value is None:
        return
    if isinstance(value, str):
        out.emit(path, condition, [(value, path)])
        return
    if isinstance(value, dict):
        out.entry(value, path, condition, allowed=_ENTRY_FIELDS)
        return
    if not isinstance(value, list):
        out.reader.error(
            path,
            f"'{path[-1]}' of task '{out.task}' must be a task name, a list of names, "
            "or a list of {when, do} entries",
        )
        return
    for index, item in enumerate(value):
        item_path = (*path, index)
        if isinstance(item, str):
            out.emit(item_path, condition, [(item, item_path)])
        else:
            out.entry(item, item_path, condition, allowed=_ENTRY_FIELDS)
