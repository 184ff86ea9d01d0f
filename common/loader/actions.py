"""Action files (``actions/<name>.yaml``) to :class:`ActionSpec`, and split-layout workflows.

An action file either describes something a worker runs (``runner_type`` and, for Python,
``entry_point: "file.py:function"`` relative to the file), or links a workflow graph kept in
another file (``workflow_file:``). In the second case the workflow's ref, label, description
and parameters come from the action file and its graph from the linked file; the combined
source map points each part at the file it was written in.

Action files are metadata shared with other systems (StackStorm, Attune), so keys Treadle
does not know are warnings here, not errors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Final

from treadle.common.loader.attune_workflow import build_workflow, read_workflow_fields
from treadle.common.loader.flow_fields import read_rate_limit
from treadle.common.loader.parameters import read_output_schema, read_parameters
from treadle.common.loader.reader import Reader
from treadle.common.loader.yaml_source import Document
from treadle.common.source import Issue, Loc, Path, Severity
from treadle.common.spec import ActionSpec, RateLimitSpec, RunnerType, WorkflowSpec

ACTION_FIELDS: Final = (
    "ref", "name", "label", "description", "enabled", "runner_type", "entry_point",
    "parameters", "output", "output_schema", "queue", "worker_selector", "tags", "workflow_file",
    "policy", "rate_limit", "side_effects",
)  # fmt: skip
#: Metadata of Attune and StackStorm actions that Treadle accepts and does not use.
ACTION_IGNORED: Final = (
    "pack", "default_execution_permission_set_refs", "permission_set_refs", "notify",
    "parameter_delivery", "parameter_format", "output_format", "timeout", "runtime",
)  # fmt: skip

#: Runner names of other systems mapped to Treadle's runners.
RUNNER_ALIASES: Final = {
    "python": RunnerType.PYTHON,
    "python-script": RunnerType.PYTHON,
    "shell": RunnerType.SHELL,
    "local-shell-script": RunnerType.SHELL,
    "local-shell-cmd": RunnerType.SHELL,
    "http": RunnerType.HTTP,
    "http-request": RunnerType.HTTP,
    "inquiry": RunnerType.INQUIRY,
    "workflow": RunnerType.WORKFLOW,
}

#: Top-level keys of a workflow whose locations come from the action file in the split layout.
_HEADER_KEYS: Final = ("ref", "label", "description")


@dataclass
class ActionRead:
    """What one action file gave: the action (``None`` if broken) and its linked workflow file."""

    action: ActionSpec | None
    reader: Reader
    data: dict[Any, Any]
    workflow_path: str | None = None
    label: str | None = None


def _rate_limit(reader: Reader, data: dict[Any, Any], ref: str | None) -> RateLimitSpec | None:
    """The action's ``rate_limit``: every task calling it shares one window, keyed by the
    action unless it names a key."""
    if "rate_limit" not in data:
        return None
    return read_rate_limit(reader, data["rate_limit"], ("rate_limit",), f"action '{ref}'")


def read_action(document: Document, pack: str) -> ActionRead:
    """Read one action file of pack ``pack``; problems go to ``result.reader.issues``."""
    reader = Reader(document)
    data = document.data
    if data is None or not isinstance(data, dict):
        if data is not None:
            reader.error((), "an action file must be a mapping with 'ref' or 'name'")
        return ActionRead(None, reader, {})
    reader.check_fields(
        data, (), "the action", ACTION_FIELDS, ignored=ACTION_IGNORED, severity=Severity.WARNING
    )
    ref = _action_ref(reader, data, pack)
    base_dir = os.path.dirname(os.path.abspath(document.file))
    workflow_file = reader.text(data.get("workflow_file"), ("workflow_file",), "'workflow_file'")
    runner = _runner(reader, data, workflow_file)
    entry_point = reader.text(data.get("entry_point"), ("entry_point",), "'entry_point'")
    if runner is not None:
        _check_entry_point(reader, runner, entry_point, base_dir)
    queue_key = "queue" if "queue" in data else "worker_selector"
    if queue_key == "worker_selector" and not isinstance(data.get(queue_key, ""), str):
        reader.warning(
            (queue_key,), "a 'worker_selector' that is not a queue name is ignored (use 'queue')"
        )
        queue_key = "queue"
    output_key = "output" if "output" in data else "output_schema"
    enabled = reader.boolean(data.get("enabled"), ("enabled",), "'enabled'")
    description = reader.text(data.get("description"), ("description",), "'description'")
    label = reader.text(data.get("label"), ("label",), "'label'")
    workflow_path = None
    if workflow_file:
        workflow_path = os.path.join(os.path.dirname(document.file), workflow_file)
        if not os.path.isfile(workflow_path):
            reader.error(
                ("workflow_file",), f"workflow file '{workflow_file}' does not exist", at_value=True
            )
            workflow_path = None
    fields = {
        "description": description,
        "entry_point": entry_point,
        "parameters": read_parameters(reader, data.get("parameters"), ("parameters",)),
        "output_schema": read_output_schema(reader, data.get(output_key), (output_key,)),
        "queue": reader.text(data.get(queue_key), (queue_key,), f"'{queue_key}'"),
        "enabled": enabled,
        "policy": reader.boolean(data.get("policy"), ("policy",), "'policy'"),
        "side_effects": reader.boolean(
            data.get("side_effects"), ("side_effects",), "'side_effects'"
        ),
        "workflow_file": workflow_file,
        "rate_limit": _rate_limit(reader, data, ref),
    }
    if ref is None or runner is None or reader.has_errors:
        return ActionRead(None, reader, data, workflow_path, label)
    action = ActionSpec(
        ref=ref,
        runner_type=runner,
        base_dir=base_dir,
        source=reader.source_map(),
        **{k: v for k, v in fields.items() if v is not None},
    )
    return ActionRead(action, reader, data, workflow_path, label)


def read_linked_workflow(
    linked: ActionRead, graph: Document
) -> tuple[WorkflowSpec | None, list[Issue]]:
    """The split-layout workflow: header from the action file, graph from ``graph``."""
    action = linked.action
    reader = Reader(graph)
    if action is None:
        return None, reader.sorted_issues()
    if graph.data is None:
        return None, reader.sorted_issues()
    if not isinstance(graph.data, dict):
        reader.error((), "a workflow file must be a mapping with 'tasks'", fatal=True)
        return None, reader.sorted_issues()
    fields = read_workflow_fields(reader, graph.data)
    if fields is None:
        return None, reader.sorted_issues()
    fields.pop("ref", None)
    header = linked.reader
    locations: dict[Path, Loc] = dict(reader.locations)
    moved = list(_HEADER_KEYS)
    fields.update({"label": linked.label, "description": action.description})
    if "parameters" in linked.data:
        if "parameters" in graph.data:
            reader.warning(
                ("parameters",),
                f"parameters are declared both here and in the action file {header.file}; "
                "the action file's are used",
            )
        fields["parameters"] = action.parameters
        moved.append("parameters")
    if action.output_schema is not None:
        fields["output_schema"] = action.output_schema
        moved.extend(("output", "output_schema"))
    for path in [p for p in locations if p and p[0] in moved]:
        del locations[path]
    locations.update({p: loc for p, loc in header.locations.items() if p and p[0] in moved})
    reader.locations = locations
    if reader.fatal:
        return None, reader.sorted_issues()
    spec = build_workflow(
        reader, ref=action.ref, fields={k: v for k, v in fields.items() if v is not None}
    )
    return spec, reader.sorted_issues()


def _action_ref(reader: Reader, data: dict[Any, Any], pack: str) -> str | None:
    ref = reader.text(data.get("ref"), ("ref",), "'ref'")
    if ref:
        return ref
    name = reader.text(data.get("name"), ("name",), "'name'")
    if name:
        return f"{pack}.{name}"
    reader.error((), "the action needs a 'ref' or a 'name'")
    return None


def _runner(reader: Reader, data: dict[Any, Any], workflow_file: str | None) -> RunnerType | None:
    if workflow_file:
        return RunnerType.WORKFLOW
    value = data.get("runner_type")
    if value is None:
        return RunnerType.PYTHON
    runner = reader.choice(value, ("runner_type",), "'runner_type'", RUNNER_ALIASES)
    return None if runner is None else RUNNER_ALIASES[runner]


def _check_entry_point(
    reader: Reader, runner: RunnerType, entry_point: str | None, base_dir: str
) -> None:
    if runner is RunnerType.PYTHON:
        if not entry_point:
            reader.error((), "a python action needs 'entry_point: \"file.py:function\"'")
            return
        file, sep, function = entry_point.partition(":")
        if not sep or not file or not function.isidentifier():
            reader.error(
                ("entry_point",),
                f"'entry_point' must look like \"file.py:function\", not {entry_point!r}",
                at_value=True,
            )
            return
        if not os.path.isfile(os.path.join(base_dir, file)):
            reader.error(
                ("entry_point",),
                f"entry point file '{file}' does not exist (looked in {base_dir})",
                at_value=True,
            )
    elif (
        runner is RunnerType.SHELL
        and entry_point
        and not os.path.isfile(os.path.join(base_dir, entry_point))
    ):
        reader.error(
            ("entry_point",),
            f"entry point script '{entry_point}' does not exist (looked in {base_dir})",
            at_value=True,
        )
