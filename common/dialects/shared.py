"""What the dialect importers and the run renderers must agree on.

An imported definition keeps its original document in ``WorkflowSpec.metadata`` under the
dialect's key, and the importers add a few tasks of their own next to the imported steps
(an approval inserted after a governance check, the failure that ends a rejected approval).
Renderers find those tasks by the suffixes below; nothing else depends on the names.
"""

from __future__ import annotations

import re
from typing import Final

from treadle.common.source import Path
from treadle.common.spec import TransitionSpec

#: ``WorkflowSpec.metadata`` key holding the imported workflows/v1 documents.
V1_METADATA: Final = "workflows_v1"
#: ``WorkflowSpec.metadata`` key holding the imported AOS plan.
AOS_METADATA: Final = "aos"
#: Dialect names, as in ``WorkflowSpec.dialect``.
WORKFLOWS_V1: Final = "workflows-v1"
AOS: Final = "aos"

#: The approval inquiry inserted after a governance check that may require approval.
APPROVAL_SUFFIX: Final = ":approval"
#: The task that fails the run when an approval is rejected.
REJECTED_SUFFIX: Final = ":rejected"

_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_NOT_REF = re.compile(r"[^a-z0-9_]+")


def task_expression(name: str) -> str:
    """How a template names task ``name``: ``task.s1``, or ``task['qualify-lead']``."""
    if _IDENTIFIER.match(name):
        return f"task.{name}"
    return "task[" + quoted(name) + "]"


def quoted(text: str) -> str:
    """``text`` as a single-quoted template string literal."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ref_part(text: str, fallback: str) -> str:
    """``text`` made fit for a workflow ref part: lower case, ``_`` for anything else."""
    cleaned = _NOT_REF.sub("_", str(text).lower()).strip("_")
    if not cleaned:
        return fallback
    return cleaned if cleaned[0].isalpha() else f"{fallback}_{cleaned}"


def condition(*terms: str | None) -> str | None:
    """The terms joined with ``and`` as one ``{{ ... }}`` condition (``None`` when none).

    Written exactly as the YAML loader would render them, so imported specs round-trip.
    """
    kept = [term for term in terms if term]
    if not kept:
        return None
    if len(kept) == 1:
        return "{{ " + kept[0] + " }}"
    return "{{ " + " and ".join(f"({term})" if " " in term else term for term in kept) + " }}"


def transition_path(task_index: int, transition_index: int) -> Path:
    """Where the YAML loader records transition ``transition_index`` of a top-level task."""
    return ("tasks", task_index, "next", transition_index)


def with_paths(task_index: int, transitions: list[TransitionSpec]) -> tuple[TransitionSpec, ...]:
    """``transitions`` with the paths the YAML loader would give them."""
    return tuple(
        transition.model_copy(update={"path": transition_path(task_index, index)})
        for index, transition in enumerate(transitions)
    )
