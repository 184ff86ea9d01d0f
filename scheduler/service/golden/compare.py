"""Comparing two golden records, ignoring what differs between any two runs.

Two runs of the same definition, with the same parameters, seed and results, make the same
decisions, but not at the same times nor under the same run id. ``compare_records``
therefore sets aside, before comparing:

* timestamps: every string that is an ISO-8601 time, and ``duration_ms``;
* each record's run id (wherever it appears: attempt, timer and child run ids are built
  from it) and its secret tag (the random part of its secret references);
* digests (``*_digest``): they cover times and run ids too, and what they digest is
  compared itself.

Everything else is compared line by line: ``run_start`` with ``run_start``, steps by
index, events by position, ``run_end`` with ``run_end``; each difference names the line
in both files, the field path and the two values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from treadle.scheduler.service.golden.document import GoldenLine, GoldenRecord

_TIME: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?")
_IGNORED_FIELDS: Final = frozenset({"duration_ms"})
#: What ignored values become, so the rest of a string still compares.
TIME: Final = "<time>"
RUN: Final = "<run>"
TAG: Final = "<secret-tag>"


def compare_records(first: GoldenRecord, second: GoldenRecord) -> list[str]:
    """Every difference between the two records, timestamps and run ids set aside."""
    a, b = _Normaliser(first), _Normaliser(second)
    problems: list[str] = []
    for kind in ("run_start", "step", "event", "run_end"):
        mine = list(first.of_kind(kind))
        theirs = list(second.of_kind(kind))
        if len(mine) != len(theirs):
            problems.append(
                f"{first.file} has {len(mine)} {kind} lines, {second.file} has {len(theirs)}"
            )
        for left, right in zip(mine, theirs, strict=False):
            label = _label(left)
            for path, x, y in _diff(a.plain(left.data), b.plain(right.data), ()):
                problems.append(
                    f"{label} ({first.file}:{left.number}, {second.file}:{right.number}) "
                    f"{'.'.join(path) or '(whole line)'}: {_short(x)} != {_short(y)}"
                )
    return problems


class _Normaliser:
    """Replaces one record's run id, secret tag and timestamps by fixed markers."""

    def __init__(self, record: GoldenRecord) -> None:
        self.run_id = record.start.run_id
        self.tag = ""
        for _line, model in record.events():
            context = model.event.get("context")
            if isinstance(context, Mapping):
                self.tag = str(context.get("secret_tag") or "")
            break

    def plain(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._text(value)
        if isinstance(value, Mapping):
            return {
                self._text(str(k)): self.plain(v)
                for k, v in value.items()
                if k not in _IGNORED_FIELDS and not str(k).endswith("_digest")
            }
        if isinstance(value, list):
            return [self.plain(item) for item in value]
        return value

    def _text(self, text: str) -> str:
        if _TIME.fullmatch(text):
            return TIME
        if self.run_id:
            text = text.replace(self.run_id, RUN)
        if self.tag:
            text = text.replace(self.tag, TAG)
        return text


def _diff(x: Any, y: Any, path: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], Any, Any]]:
    if isinstance(x, dict) and isinstance(y, dict):
        for key in sorted(set(x) | set(y)):
            if key not in x or key not in y:
                yield (*path, key), x.get(key, "<absent>"), y.get(key, "<absent>")
            else:
                yield from _diff(x[key], y[key], (*path, key))
    elif isinstance(x, list) and isinstance(y, list) and len(x) == len(y):
        for index, (left, right) in enumerate(zip(x, y, strict=True)):
            yield from _diff(left, right, (*path, str(index)))
    elif _canonical(x) != _canonical(y):
        yield path, x, y


def _label(line: GoldenLine) -> str:
    if line.kind == "step":
        return f"step {line.data.get('index')} ({line.data.get('step_id')})"
    if line.kind == "event":
        event = line.data.get("event")
        kind = event.get("kind") if isinstance(event, dict) else None
        return f"event {line.data.get('seq')} ({kind})"
    return line.kind


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def _short(value: Any, limit: int = 160) -> str:
    text = _canonical(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


__all__: Sequence[str] = ("compare_records",)
