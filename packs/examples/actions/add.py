"""examples.add: a tiny pure action, so examples can compute values and branch on them."""

from __future__ import annotations


def add(a: float, b: float = 1) -> dict[str, float]:
    return {"sum": a + b}
