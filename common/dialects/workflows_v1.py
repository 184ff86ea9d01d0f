"""workflows/v1 ``WorkflowVersion`` JSON to :class:`WorkflowSpec` (``dialect="workflows-v1"``).

This module is the importer's entry point: it checks the version's own fields and puts the
spec together from the parts, each read by the module whose job it is.
:mod:`~treadle.common.dialects.v1_document` reads and checks the steps, edges and retry
policies (every unknown field reported with its JSON path, edges between known steps, no
cycles), :mod:`~treadle.common.dialects.v1_triggers` the trigger and the run inputs it
implies, and :mod:`~treadle.common.dialects.v1_tasks` builds the Treadle tasks. The input
is either a ``WorkflowVersion`` object or a response that wraps one (``{"version": {...},
"definition": {...}}``, as publishing a version returns); the definition's name and
description then become the workflow's label and description.

The original documents are kept in ``spec.metadata["workflows_v1"]`` (``version`` and, when
given, ``definition``) so runs can be rendered with the original step names and types.
How each step type runs is described in ``docs/dialects.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from treadle.common.dialects.json_reader import read_json
from treadle.common.dialects.shared import V1_METADATA, WORKFLOWS_V1, ref_part
from treadle.common.dialects.v1_document import (
    PAYLOAD,
    VERSION_FIELDS,
    V1Options,
    read_document,
    read_seconds,
)
from treadle.common.dialects.v1_tasks import build_tasks
from treadle.common.dialects.v1_triggers import read_trigger, run_parameters
from treadle.common.errors import DefinitionError
from treadle.common.source import Issue, Path, Severity, SourceMap
from treadle.common.spec import PublishSpec, WorkflowSpec

__all__ = ["V1Options", "import_workflows_v1", "read_workflows_v1"]


def read_workflows_v1(
    text: str, file: str, options: V1Options | None = None
) -> tuple[WorkflowSpec | None, list[Issue]]:
    """Read a v1 version; never raises for problems in it (they come back as issues)."""
    options = options or V1Options()
    reader, data = read_json(text, file)
    if data is None:
        return None, reader.sorted_issues()
    base: Path = ()
    definition: Mapping[str, Any] | None = None
    if isinstance(data, dict) and isinstance(data.get("version"), dict):
        base = ("version",)
        definition = data.get("definition") if isinstance(data.get("definition"), dict) else None
        version = data["version"]
    else:
        version = data
    if not isinstance(version, dict):
        reader.error(base, "a workflows/v1 version must be an object with 'steps'", fatal=True)
        return None, reader.sorted_issues()
    reader.check_fields(version, base, "the workflow version", VERSION_FIELDS)
    document = read_document(reader, version, base)
    if document is None or reader.fatal:
        return None, reader.sorted_issues()
    tasks = build_tasks(reader, document, options)
    fields: dict[str, Any] = {
        "ref": options.ref or _default_ref(version),
        "label": _text(definition, "name"),
        "description": _text(definition, "description") or _text(version, "description"),
        "version": None if version.get("version") is None else str(version["version"]),
        "parameters": run_parameters(version, options),
        "vars": (PublishSpec(name=PAYLOAD, value="{{ parameters }}"),),
        "tasks": tasks,
        "output_map": {PAYLOAD: "{{ vars.payload }}"},
        "trigger": read_trigger(reader, version.get("trigger"), (*base, "trigger")),
        "timeout": read_seconds(reader, version.get("timeout_seconds"), (*base, "timeout_seconds")),
        "dialect": WORKFLOWS_V1,
        "source": SourceMap(file),  # errors found later name the imported file
        "metadata": {
            V1_METADATA: {"version": version, **({"definition": definition} if definition else {})}
        },
    }
    if reader.has_errors:
        return None, reader.sorted_issues()
    spec = WorkflowSpec(**{k: v for k, v in fields.items() if v is not None})
    return spec, reader.sorted_issues()


def import_workflows_v1(text: str, file: str, options: V1Options | None = None) -> WorkflowSpec:
    """The imported spec; raise :class:`DefinitionError` with every error found."""
    spec, issues = read_workflows_v1(text, file, options)
    if spec is None or any(issue.severity is Severity.ERROR for issue in issues):
        raise DefinitionError(issues)
    return spec


# -- helpers ------------------------------------------------------------------------------------


def _default_ref(version: Mapping[str, Any]) -> str:
    name = version.get("definition_id") or version.get("id") or "workflow"
    return "workflows_v1." + ref_part(str(name), "wf")


def _text(data: Mapping[str, Any] | None, key: str) -> str | None:
    value = None if data is None else data.get(key)
    return value if isinstance(value, str) and value else None
