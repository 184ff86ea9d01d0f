"""Micro-benchmark of TemplateEngine.render/truthy: microseconds per call on cached templates.

Run: ``.venv/bin/python bench/expr_render.py``. The scheduler renders thousands of values per
second, so a cached simple template should cost a few microseconds and a plain string
(no template syntax) well under one.
"""

from __future__ import annotations

import timeit
from collections.abc import Callable
from typing import Any

from treadle.common.expr import TemplateEngine


def _context() -> dict[str, Any]:
    return {
        "parameters": {"name": "World", "regions": ["us", "eu"]},
        "workflow": {"status": "running"},
        "task": {"a": {"status": "succeeded", "result": {"n": 3}}},
        "item": 42,
        "index": 0,
        "succeeded": lambda: True,
        "failed": lambda: False,
        "timed_out": lambda: False,
    }


def _measure(call: Callable[[], object], number: int = 50_000) -> float:
    call()  # compile and cache
    best = min(timeit.repeat(call, number=number, repeat=5))
    return best / number * 1e6


def main() -> None:
    engine = TemplateEngine()
    context = _context()
    cases: list[tuple[str, Callable[[], object]]] = [
        ("(a) plain string", lambda: engine.render("just some text", context)),
        ("(b) {{ item }}", lambda: engine.render("{{ item }}", context)),
        (
            "(c) Hello {{ parameters.name }}!",
            lambda: engine.render("Hello {{ parameters.name }}!", context),
        ),
        (
            "(d) when {{ succeeded() and task.a.result.n > 0 }}",
            lambda: engine.truthy("{{ succeeded() and task.a.result.n > 0 }}", context),
        ),
    ]
    for label, call in cases:
        print(f"{label:<55} {_measure(call):7.2f} us/render")


if __name__ == "__main__":
    main()
