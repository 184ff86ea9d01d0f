"""Transitions: conditions, publishes and targets, in every shape the Attune dialect allows.

All shapes end up as :class:`TransitionSpec` values whose ``when`` is one template
(``"{{ succeeded() and (x > 1) }}"``). Conditions are combined as text, never evaluated:

* a ``when`` that is exactly one ``{{ expression }}`` contributes that expression;
* a ``when`` without ``{{`` is itself an expression (``when: succeeded()``);
* mixed text (``"{{ a }} and {{ b }}"``) is an error, since it would render to a string
  that is always true.

"First match" lists (``decision``, and decision-like entries inside a ``do`` list) become
independent transitions by conjunction with the negations of the earlier conditions.

For each transition the loader records where its parts were written: ``path + ("do", i)``
is the i-th target and ``path + ("publish", j)`` the j-th publish, whatever shape the
source had, so later checks can point at them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from treadle.common.expr import expression_source
from treadle.common.loader.reader import Reader
from treadle.common.source import Path
from treadle.common.spec import PublishSpec, TransitionSpec

#: The status functions legacy keys stand for.
STATUS = {
    "on_success": "succeeded()",
    "on_failure": "failed()",
    "on_timeout": "timed_out()",
    "on_complete": None,
}


@dataclass(frozen=True)
class Condition:
    """A conjunction of terms: status functions, expressions and negated expressions."""

    terms: tuple[tuple[str, str], ...] = ()

    def status(self, function: str | None) -> Condition:
        return self if function is None else Condition((*self.terms, ("status", function)))

    def holds(self, expression: str | None) -> Condition:
        return self if expression is None else Condition((*self.terms, ("is", expression)))

    def fails(self, expression: str) -> Condition:
        return Condition((*self.terms, ("not", expression)))

    def render(self) -> str | None:
        """The condition as one template, or ``None`` for "always"."""
        if not self.terms:
            return None
        if len(self.terms) == 1 and self.terms[0][0] != "not":
            return "{{ " + self.terms[0][1] + " }}"
        parts = []
        for kind, text in self.terms:
            if kind == "status":
                parts.append(text)
            elif kind == "is":
                parts.append(f"({text})")
            else:
                parts.append(f"not ({text})")
        return "{{ " + " and ".join(parts) + " }}"


ALWAYS = Condition()


def condition_expression(reader: Reader, value: Any, path: Path) -> str | None:
    """The expression a ``when`` value stands for (``None``: no condition or unusable)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if not isinstance(value, str):
        reader.error(
            path, f"a condition must be text such as '{{{{ succeeded() }}}}', not {value!r}"
        )
        return None
    inner = expression_source(value)
    if inner is not None:
        if not inner:
            reader.error(path, "the condition '{{ }}' is empty", at_value=True)
            return None
        return inner
    if "{{" in value or "{%" in value or "{#" in value:
        reader.error(
            path,
            f"a condition must be a single {{{{ expression }}}}, not mixed text: {value!r}",
            at_value=True,
        )
        return None
    if not value.strip():
        reader.error(path, "the condition is empty", at_value=True)
        return None
    return value.strip()


def read_publish(
    reader: Reader, value: Any, path: Path, task: str
) -> list[tuple[PublishSpec, Path]]:
    """``publish`` as a list of one-key mappings or as a mapping, with each value's path."""
    return read_assignments(reader, value, path, f"'publish' of task '{task}'")


def read_assignments(
    reader: Reader, value: Any, path: Path, what: str
) -> list[tuple[PublishSpec, Path]]:
    """Name/value pairs written as a mapping or a list of one-key mappings (publish, vars)."""
    if value is None:
        return []
    pairs: list[tuple[Any, Any, Path]] = []
    if isinstance(value, dict):
        pairs = [(name, item, (*path, name)) for name, item in value.items()]
    elif isinstance(value, list):
        for index, entry in enumerate(value):
            if not isinstance(entry, dict) or len(entry) != 1:
                reader.error(
                    (*path, index),
                    f"each entry of {what} must be one 'name: value' pair, not {entry!r}",
                )
                continue
            ((name, item),) = entry.items()
            pairs.append((name, item, (*path, index, name)))
    else:
        reader.error(path, f"{what} must be a mapping or a list of 'name: value' pairs")
        return []
    result: list[tuple[PublishSpec, Path]] = []
    for name, item, item_path in pairs:
        if not isinstance(name, str) or not name:
            reader.error(item_path, f"a name in {what} must be text, not {name!r}")
            continue
        result.append((PublishSpec(name=name, value=item), item_path))
    return result


class TransitionReader:
    """Builds the transitions of one task, recording where each part was written."""

    def __init__(self, reader: Reader, task: str) -> None:
        self.reader = reader
        self.task = task
        self.out: list[TransitionSpec] = []

    def emit(
        self,
        path: Path,
        condition: Condition,
        targets: Sequence[tuple[str, Path]] = (),
        publish: Sequence[tuple[PublishSpec, Path]] = (),
    ) -> None:
        for index, (_, target_path) in enumerate(targets):
            self.reader.alias((*path, "do", index), target_path, to_value=True)
        for index, (_, value_path) in enumerate(publish):
            self.reader.alias((*path, "publish", index), value_path)
        self.out.append(
            TransitionSpec(
                when=condition.render(),
                publish=tuple(p for p, _ in publish),
                do=tuple(name for name, _ in targets),
                path=path,
            )
        )

    def entry(self, entry: Any, path: Path, outer: Condition, *, allowed: tuple[str, ...]) -> None:
        """One ``{when?, publish?, do?}`` mapping (``next`` may stand for ``do`` when allowed)."""
        if not isinstance(entry, dict):
            self.reader.error(
                path,
                f"a transition of task '{self.task}' must be a mapping with 'when', 'publish' "
                f"and 'do', not {entry!r}",
            )
            return
        self.reader.check_fields(entry, path, f"a transition of task '{self.task}'", allowed)
        condition = outer.holds(self._when(entry, path))
        key = self._target_key(entry, path) if "next" in allowed else "do"
        self._body(entry, path, condition, key)

    def chain(self, entries: Sequence[tuple[Any, Path]], outer: Condition, *, what: str) -> None:
        """A first-match list of ``{when, next}`` entries ending, optionally, in ``{default}``.

        Entry *k* fires when ``outer`` holds, no earlier entry's condition holds, and its
        own does; a plain task name or an entry without ``when`` matches whatever is left.
        """
        earlier: list[str] = []
        closed_at: int | None = None
        for position, (entry, entry_path) in enumerate(entries):
            if closed_at is not None:
                self.reader.error(
                    entry_path,
                    f"this entry of {what} of task '{self.task}' can never be chosen: "
                    f"entry {closed_at + 1} before it always matches",
                )
                continue
            condition = outer
            for previous in earlier:
                condition = condition.fails(previous)
            if isinstance(entry, str):
                closed_at = position
                self.emit(entry_path, condition, [(entry, entry_path)])
                continue
            if not isinstance(entry, dict):
                self.reader.error(
                    entry_path, f"an entry of {what} must be a mapping, not {entry!r}"
                )
                continue
            self.reader.check_fields(
                entry,
                entry_path,
                f"{what} of task '{self.task}'",
                ("when", "next", "do", "default", "publish"),
            )
            if "default" in entry:
                if "when" in entry:
                    self.reader.error((*entry_path, "when"), "a 'default' entry takes no 'when'")
                closed_at = position
                self._body(entry, entry_path, condition, "default")
                continue
            expression = self._when(entry, entry_path)
            if expression is None:
                closed_at = position
            else:
                earlier.append(expression)
            self._body(
                entry, entry_path, condition.holds(expression), self._target_key(entry, entry_path)
            )

    def _when(self, entry: dict[Any, Any], path: Path) -> str | None:
        """The entry's condition; an unusable one (reported) stands as ``false``, so the
        transition stays conditional and later checks do not report consequences of it."""
        if entry.get("when") is None:
            return None
        expression = condition_expression(self.reader, entry["when"], (*path, "when"))
        return "false" if expression is None else expression

    def _target_key(self, entry: dict[Any, Any], path: Path) -> str:
        if "next" in entry and "do" in entry:
            self.reader.error((*path, "next"), "give the targets in 'do' or in 'next', not both")
        return "next" if "next" in entry and "do" not in entry else "do"

    def _body(self, entry: dict[Any, Any], path: Path, condition: Condition, key: str) -> None:
        publish = read_publish(self.reader, entry.get("publish"), (*path, "publish"), self.task)
        targets, nested = self._targets(entry.get(key), (*path, key))
        if targets or publish or not nested:
            self.emit(path, condition, targets, publish)
        if nested:
            self.chain(nested, condition, what="a 'do' list")

    def _targets(
        self, value: Any, path: Path
    ) -> tuple[list[tuple[str, Path]], list[tuple[Any, Path]]]:
        """Task names in ``value``, and any decision-like entries found among them."""
        if value is None:
            return [], []
        if isinstance(value, str):
            return [(value, path)], []
        if not isinstance(value, list):
            self.reader.error(
                path, f"'do' of task '{self.task}' must be a task name or a list of names"
            )
            return [], []
        names: list[tuple[str, Path]] = []
        nested: list[tuple[Any, Path]] = []
        for index, item in enumerate(value):
            if isinstance(item, str):
                names.append((item, (*path, index)))
            elif isinstance(item, dict):
                nested.append((item, (*path, index)))
            else:
                self.reader.error(
                    (*path, index), f"a transition target must be a task name, not {item!r}"
                )
        return names, nested
