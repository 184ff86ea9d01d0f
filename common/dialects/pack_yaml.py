"""A :class:`WorkflowSpec` written as a standalone workflow file in the pack YAML dialect.

``treadle import`` uses this to turn an imported workflows/v1 or AOS definition into YAML a
user can read, edit and keep in a pack. The text loads back (``load_workflow_text``) to a
spec equal to the one written, source locations aside: every field is written the way the
loader reads it (durations in seconds, conditions as one ``{{ expression }}``, ``next``
transitions, parameters in the flat style), and nothing is written that the loader would
fill in on its own.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from typing import Any

import yaml

from treadle.common.spec import (
    Backoff,
    ParameterSpec,
    PublishSpec,
    RetrySpec,
    TaskSpec,
    TaskType,
    TransitionSpec,
    WaitForSpec,
    WorkflowSpec,
)


class _PlainDumper(yaml.SafeDumper):
    """Writes a value used twice (the approval schema of several steps) out each time:
    no ``&id001`` anchors and ``*id001`` aliases, which would tie the copies together for
    whoever edits the file."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def spec_to_yaml(spec: WorkflowSpec, *, header: str | None = None) -> str:
    """The YAML text of ``spec`` (``header`` lines become ``#`` comments on top)."""
    text = yaml.dump(
        workflow_document(spec),
        Dumper=_PlainDumper,
        sort_keys=False,
        allow_unicode=True,
        width=100,
    )
    if header:
        comments = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines())
        text = comments + text
    return text


def workflow_document(spec: WorkflowSpec) -> dict[str, Any]:
    """``spec`` as the plain data of a workflow file."""
    document: dict[str, Any] = {"ref": spec.ref}
    for key in ("label", "description", "version"):
        value = getattr(spec, key)
        if value is not None:
            document[key] = value
    if spec.dialect != "attune":
        document["dialect"] = spec.dialect
    if spec.parameters:
        document["parameters"] = {p.name: _parameter(p) for p in spec.parameters}
    if spec.output_schema is not None:
        document["output"] = spec.output_schema
    if spec.vars:
        document["vars"] = _assignments(spec.vars)
    if spec.timeout is not None:
        document["timeout"] = _seconds(spec.timeout)
    if spec.trigger is not None:
        trigger = spec.trigger.model_dump(mode="json", exclude_none=True)
        if not trigger.get("parameters"):
            trigger.pop("parameters", None)
        document["trigger"] = trigger
    document["tasks"] = [_task(task) for task in spec.tasks]
    if spec.output_map:
        document["output_map"] = dict(spec.output_map)
    if spec.metadata:
        document["metadata"] = dict(spec.metadata)
    return document


def _parameter(param: ParameterSpec) -> dict[str, Any]:
    entry: dict[str, Any] = dict(param.schema_)
    if param.required:
        entry["required"] = True
    if param.secret:
        entry["secret"] = True
    if param.has_default:
        entry["default"] = param.default
    if param.description is not None:
        entry["description"] = param.description
    return entry


def _assignments(values: Iterable[PublishSpec]) -> list[dict[str, Any]]:
    return [{value.name: value.value} for value in values]


def _task(task: TaskSpec) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": task.name}
    if task.type is not TaskType.ACTION:
        entry["type"] = task.type.value
    if task.action is not None:
        entry["action"] = task.action
    if task.input:
        entry["input"] = dict(task.input)
    if task.when is not None:
        entry["when"] = task.when
    for key in ("with_items", "batch_size", "concurrency", "join", "queue"):
        value = getattr(task, key)
        if value is not None:
            entry[key] = value
    for key in ("delay", "timeout"):
        duration = getattr(task, key)
        if duration is not None:
            entry[key] = _seconds(duration)
    if task.retry is not None:
        entry["retry"] = _retry(task.retry)
    if task.wait_for is not None:
        entry["wait_for"] = _wait_for(task.wait_for)
    if task.compensate is not None:
        entry["compensate"] = {
            "action": task.compensate.action,
            "input": dict(task.compensate.input),
        }
    if task.tasks:
        entry["tasks"] = [_task(nested) for nested in task.tasks]
    if task.next:
        entry["next"] = [_transition(transition) for transition in task.next]
    return entry


def _transition(transition: TransitionSpec) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if transition.when is not None:
        entry["when"] = transition.when
    if transition.publish:
        entry["publish"] = _assignments(transition.publish)
    if transition.do:
        entry["do"] = list(transition.do)
    return entry


def _retry(retry: RetrySpec) -> dict[str, Any]:
    entry: dict[str, Any] = {"count": retry.count, "delay": _seconds(retry.delay)}
    if retry.backoff is not Backoff.CONSTANT:
        entry["backoff"] = retry.backoff.value
    if retry.max_delay is not None:
        entry["max_delay"] = _seconds(retry.max_delay)
    return entry


def _wait_for(wait: WaitForSpec) -> dict[str, Any]:
    entry: dict[str, Any] = {}
    if isinstance(wait.inquiry, str):
        entry["inquiry"] = wait.inquiry
    elif wait.inquiry is not None:
        inquiry: dict[str, Any] = {"prompt": wait.inquiry.prompt}
        if wait.inquiry.schema_ is not None:
            inquiry["schema"] = wait.inquiry.schema_
        if wait.inquiry.assigned_to is not None:
            inquiry["assigned_to"] = wait.inquiry.assigned_to
        if wait.inquiry.timeout is not None:
            inquiry["timeout"] = _seconds(wait.inquiry.timeout)
        entry["inquiry"] = inquiry
    if wait.event is not None:
        entry["event"] = wait.event.model_dump(mode="json", exclude_none=True)
    if wait.timeout is not None:
        entry["timeout"] = _seconds(wait.timeout)
    return entry


def _seconds(duration: timedelta) -> int | float:
    seconds = duration.total_seconds()
    return int(seconds) if seconds.is_integer() else seconds
