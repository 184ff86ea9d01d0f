"""Attune workflow files to :class:`WorkflowSpec`, reporting every problem in the file.

Two ways in: the raising ``load_*`` functions (for running: any error raises
:class:`DefinitionError` carrying all of them), and the non-raising ``read_*`` functions
(for validation: the model, when one could be built, and every issue found). ``read_*``
returns a model even when it found local problems (an unknown field, a bad duration), so
later checks can report more; it returns ``None`` when the model would be misleading.
"""

from __future__ import annotations

from typing import Any, Final

import pydantic

from treadle.common.errors import DefinitionError
from treadle.common.loader.attune_tasks import read_tasks
from treadle.common.loader.flow_fields import read_concurrency_key, read_priority
from treadle.common.loader.guard_fields import read_budget
from treadle.common.loader.parameters import read_output_schema, read_parameters
from treadle.common.loader.reader import Reader
from treadle.common.loader.transitions import read_assignments
from treadle.common.loader.triggers import read_triggers
from treadle.common.loader.yaml_source import Document, parse_yaml, read_yaml_file
from treadle.common.source import Issue, Severity
from treadle.common.spec import WorkflowSpec

WORKFLOW_FIELDS: Final = (
    "ref", "label", "description", "version", "parameters", "output", "vars", "tasks",
    "output_map", "trigger", "triggers", "timeout", "metadata", "dialect", "priority",
    "concurrency_key", "budget",
)  # fmt: skip
#: Attune metadata accepted and not used (``output_schema`` is used when ``output`` is absent).
WORKFLOW_IGNORED: Final = ("name", "output_schema", "tags", "enabled")
#: What ``dialect:`` may say: the language a definition was first written in (``treadle
#: import`` writes it into the YAML it makes from a workflows/v1 or AOS definition).
DIALECTS: Final = ("attune", "workflows-v1", "aos")

_ORQUESTA_KEYS: Final = ("on-success", "on-error", "on-complete", "with-items")


def read_workflow_text(
    text: str, file: str, *, default_ref: str | None = None
) -> tuple[WorkflowSpec | None, list[Issue]]:
    """Parse and read a workflow; never raises for problems in the definition."""
    return read_workflow_document(parse_yaml(text, file), default_ref=default_ref)


def read_workflow_file(
    path: str, *, default_ref: str | None = None
) -> tuple[WorkflowSpec | None, list[Issue]]:
    return read_workflow_document(read_yaml_file(path), default_ref=default_ref)


def load_workflow_text(text: str, file: str, *, default_ref: str | None = None) -> WorkflowSpec:
    """The workflow in ``text``; raise :class:`DefinitionError` with every error found."""
    return _raise_on_errors(*read_workflow_text(text, file, default_ref=default_ref))


def load_workflow_file(path: str, *, default_ref: str | None = None) -> WorkflowSpec:
    return _raise_on_errors(*read_workflow_file(str(path), default_ref=default_ref))


def read_workflow_document(
    document: Document, *, default_ref: str | None = None
) -> tuple[WorkflowSpec | None, list[Issue]]:
    reader = Reader(document)
    if document.data is None:
        return None, reader.sorted_issues()
    if not isinstance(document.data, dict):
        reader.error((), "a workflow file must be a mapping with 'ref' and 'tasks'", fatal=True)
        return None, reader.sorted_issues()
    data: dict[Any, Any] = document.data
    fields = read_workflow_fields(reader, data)
    if fields is None:
        return None, reader.sorted_issues()
    ref = fields.pop("ref", None) or default_ref
    wrong_type = not isinstance(data.get("ref", ""), str | None)  # reported already
    if not ref and not wrong_type:
        reader.error(
            (), "the workflow needs a 'ref' (for example 'my_pack.my_workflow')", fatal=True
        )
    if reader.fatal or not ref:
        return None, reader.sorted_issues()
    spec = build_workflow(reader, ref=ref, fields=fields)
    return spec, reader.sorted_issues()


def read_workflow_fields(reader: Reader, data: dict[Any, Any]) -> dict[str, Any] | None:
    """The :class:`WorkflowSpec` fields written in ``data`` (``ref`` included if present).

    ``None`` when ``data`` is another dialect (reported once, as a fatal issue).
    """
    if _looks_like_orquesta(reader, data):
        return None
    reader.check_fields(data, (), "the workflow", WORKFLOW_FIELDS, ignored=WORKFLOW_IGNORED)
    fields: dict[str, Any] = {}
    for key in ("ref", "label", "description"):
        fields[key] = reader.text(data.get(key), (key,), f"'{key}'")
    fields["version"] = reader.text(data.get("version"), ("version",), "'version'", coerce=True)
    if "parameters" in data:
        fields["parameters"] = read_parameters(reader, data["parameters"], ("parameters",))
    output_key = "output" if "output" in data else "output_schema"
    fields["output_schema"] = read_output_schema(reader, data.get(output_key), (output_key,))
    if "vars" in data:
        assignments = read_assignments(reader, data["vars"], ("vars",), "'vars'")
        seen: set[str] = set()
        for index, (assignment, value_path) in enumerate(assignments):
            if assignment.name in seen:
                reader.error(value_path, f"workflow variable '{assignment.name}' is declared twice")
            seen.add(assignment.name)
            reader.alias(("vars", index), value_path)
        fields["vars"] = tuple(a for a, _ in assignments)
    if "tasks" not in data:
        reader.error((), "the workflow has no 'tasks'", fatal=True)
    fields["tasks"] = read_tasks(reader, data.get("tasks"), ("tasks",))
    output_map = reader.mapping(data.get("output_map"), ("output_map",), "'output_map'")
    if output_map:
        fields["output_map"] = {str(k): v for k, v in output_map.items()}
    fields.update(read_triggers(reader, data))
    fields["timeout"] = reader.duration(data.get("timeout"), ("timeout",), "the workflow 'timeout'")
    fields["priority"] = read_priority(reader, data.get("priority"), ("priority",), "the workflow")
    if "concurrency_key" in data:
        fields["concurrency_key"] = read_concurrency_key(
            reader, data["concurrency_key"], ("concurrency_key",), "the workflow"
        )
    if "budget" in data:
        fields["budget"] = read_budget(reader, data["budget"], ("budget",), "the workflow")
    metadata = reader.mapping(data.get("metadata"), ("metadata",), "'metadata'")
    if metadata:
        fields["metadata"] = {str(k): v for k, v in metadata.items()}
    fields["dialect"] = reader.choice(data.get("dialect"), ("dialect",), "'dialect'", DIALECTS)
    return {k: v for k, v in fields.items() if v is not None}


def build_workflow(reader: Reader, *, ref: str, fields: dict[str, Any]) -> WorkflowSpec | None:
    """The model from read fields, or ``None`` (with an issue) if pydantic refuses it."""
    try:
        return WorkflowSpec(ref=ref, source=reader.source_map(), **fields)
    except pydantic.ValidationError as exc:  # pragma: no cover - the readers check first
        for error in exc.errors():
            where = ".".join(str(p) for p in error["loc"])
            reader.error((), f"'{where}': {error['msg']}", fatal=True)
        return None


def _looks_like_orquesta(reader: Reader, data: dict[Any, Any]) -> bool:
    """Recognise a StackStorm Orquesta workflow and say so once, instead of many errors."""
    tasks = data.get("tasks")
    signs: list[str] = []
    where: tuple[Any, ...] = ()
    if isinstance(tasks, dict):
        signs.append("tasks are a mapping")
        where = ("tasks",)
        keys = {k for task in tasks.values() if isinstance(task, dict) for k in task}
        used = [k for k in _ORQUESTA_KEYS if k in keys]
        if used:
            signs.append("transitions use " + ", ".join(f"'{k}'" for k in used))
    if isinstance(data.get("input"), list) and "parameters" not in data:
        signs.append("'input' is a list of names")
        where = where or ("input",)
    if not signs:
        return False
    reader.error(
        where,
        f"this looks like a StackStorm Orquesta workflow ({'; '.join(signs)}); Treadle reads "
        "the Attune dialect: tasks are a list with 'next' or 'on_success', and inputs are "
        "declared under 'parameters'",
        fatal=True,
    )
    return True


def _raise_on_errors(spec: WorkflowSpec | None, issues: list[Issue]) -> WorkflowSpec:
    if spec is None or any(i.severity is Severity.ERROR for i in issues):
        raise DefinitionError(issues)
    return spec
