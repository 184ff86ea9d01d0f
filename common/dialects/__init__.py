"""The other two dialects Treadle runs: workflows/v1 versions and AOS plans (JSON).

Both import to the same :class:`~treadle.common.spec.WorkflowSpec` the YAML loader builds
(``dialect="workflows-v1"`` or ``"aos"``), so validation, the graph and the scheduler core
know nothing about them. Everything here is pure: text in, spec (or every problem, located
by JSON path) out.

* :func:`read_workflows_v1` / :func:`import_workflows_v1` with :class:`V1Options`;
* :func:`read_aos` / :func:`import_aos` with :class:`AosOptions`;
* :func:`detect_dialect` and :func:`import_text`, which picks the importer;
* :func:`spec_to_yaml`: an imported spec as pack YAML that loads back to the same spec.
"""

from __future__ import annotations

import json
from typing import Any

from treadle.common.dialects.aos import AosOptions, import_aos, looks_like_aos, read_aos, step_seed
from treadle.common.dialects.pack_yaml import spec_to_yaml, workflow_document
from treadle.common.dialects.shared import AOS, AOS_METADATA, V1_METADATA, WORKFLOWS_V1
from treadle.common.dialects.workflows_v1 import V1Options, import_workflows_v1, read_workflows_v1
from treadle.common.errors import DefinitionError
from treadle.common.source import Issue, Loc, Severity
from treadle.common.spec import WorkflowSpec

__all__ = [
    "AOS",
    "AOS_METADATA",
    "V1_METADATA",
    "WORKFLOWS_V1",
    "AosOptions",
    "V1Options",
    "detect_dialect",
    "import_aos",
    "import_text",
    "import_workflows_v1",
    "read_aos",
    "read_text",
    "read_workflows_v1",
    "spec_to_yaml",
    "step_seed",
    "workflow_document",
]


def detect_dialect(data: Any) -> str | None:
    """``"workflows-v1"``, ``"aos"`` or ``None`` for parsed JSON ``data``."""
    if isinstance(data, dict):
        version = data.get("version") if isinstance(data.get("version"), dict) else data
        if isinstance(version, dict) and isinstance(version.get("steps"), list):
            steps: list[Any] = version["steps"]
            typed = any(isinstance(step, dict) and "step_type" in step for step in steps)
            if "edges" in version or typed:
                return WORKFLOWS_V1
    if looks_like_aos(data):
        return AOS
    return None


def read_text(
    text: str,
    file: str,
    *,
    dialect: str | None = None,
    v1: V1Options | None = None,
    aos: AosOptions | None = None,
) -> tuple[WorkflowSpec | None, list[Issue]]:
    """Import ``text`` in ``dialect`` (detected when ``None``); never raises for problems."""
    if dialect is None:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            return None, [Issue(Loc(file, exc.lineno, exc.colno), f"invalid JSON: {exc.msg}")]
        dialect = detect_dialect(data)
        if dialect is None:
            message = (
                "not a workflows/v1 version (an object with 'steps' and 'edges') nor an AOS "
                "plan (with 'steps', 'plan', 'input.plan' or 'data.steps')"
            )
            return None, [Issue(Loc(file, 1, 1), message)]
    if dialect == WORKFLOWS_V1:
        return read_workflows_v1(text, file, v1)
    if dialect == AOS:
        return read_aos(text, file, aos)
    return None, [Issue(Loc(file), f"unknown dialect {dialect!r}: use workflows-v1 or aos")]


def import_text(
    text: str,
    file: str,
    *,
    dialect: str | None = None,
    v1: V1Options | None = None,
    aos: AosOptions | None = None,
) -> WorkflowSpec:
    """:func:`read_text`, raising :class:`DefinitionError` with every error found."""
    spec, issues = read_text(text, file, dialect=dialect, v1=v1, aos=aos)
    if spec is None or any(issue.severity is Severity.ERROR for issue in issues):
        raise DefinitionError(issues)
    return spec
