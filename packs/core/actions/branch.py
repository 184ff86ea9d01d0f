"""core.branch: the first branch whose (already rendered) condition holds, by its label."""

from __future__ import annotations

from typing import Any


class NoBranchMatched(Exception):
    """No branch condition held; workflows see ``error.type == "NoBranchMatched"``."""


def branch(
    branches: list[dict[str, Any]], value_name: str | None = None, value: Any = None
) -> dict[str, Any]:
    for candidate in branches:
        if candidate.get("holds"):
            result: dict[str, Any] = {"selected_edge": candidate["label"]}
            # a value named like the selection (a branch routing on an earlier branch's
            # ``selected_edge``) must not replace the selection the transitions read
            if value_name and value_name != "selected_edge":
                result[value_name] = value
            return result
    labels = ", ".join(repr(c.get("label")) for c in branches) or "none"
    raise NoBranchMatched(f"no branch condition holds (branches: {labels})")
