"""workflows/v1 ``WorkflowVersion`` JSON to :class:`WorkflowSpec` (``dialect="workflows-v1"``).

This module reads and checks the document: the version's fields, its steps, edges, trigger
and retry policy, every unknown field reported with its JSON path, and the graph rules of
the dialect (edges between known steps, no cycles). :mod:`~treadle.common.dialects.v1_tasks`
then builds the Treadle tasks. The input is either a ``WorkflowVersion`` object or a
response that wraps one (``{"version": {...}, "definition": {...}}``, as publishing a version
returns); the definition's name and description then become the workflow's label and
description.

The original documents are kept in ``spec.metadata["workflows_v1"]`` (``version`` and, when
given, ``definition``) so runs can be rendered with the original step names and types.
How each step type runs is described in ``docs/dialects.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from treadle.common.dialects.json_reader import JsonReader, read_json
from treadle.common.dialects.shared import V1_METADATA, WORKFLOWS_V1, ref_part
from treadle.common.dialects.v1_expressions import (
    ExpressionProblem,
    event_data_resolver,
    translate,
)
from treadle.common.errors import DefinitionError
from treadle.common.loader.reader import suggestion
from treadle.common.source import Issue, Path, Severity, SourceMap
from treadle.common.spec import (
    Backoff,
    ParameterSpec,
    PublishSpec,
    RetrySpec,
    TriggerSpec,
    WorkflowSpec,
)

VERSION_FIELDS: Final = (
    "id", "definition_id", "version", "steps", "edges", "trigger", "default_retry_policy",
    "timeout_seconds", "author", "created_at", "description",
)  # fmt: skip
STEP_FIELDS: Final = (
    "id", "name", "step_type", "description", "required_capability", "action_type",
    "prompt_name", "skill_id", "agent_id", "timeout_seconds", "risk_level", "condition_expr",
    "compensation_step_id", "notification_channel", "notification_template",
    "event_type_pattern", "event_subject_pattern", "config", "retry_policy",
)  # fmt: skip
EDGE_FIELDS: Final = ("from_step_id", "to_step_id", "label", "condition_expr")
TRIGGER_FIELDS: Final = (
    "trigger_type", "tap_provider", "tap_entity_type", "tap_action", "filter_expr",
    "event_type", "event_subject",
)  # fmt: skip
RETRY_FIELDS: Final = ("max_retries", "backoff_seconds", "backoff_multiplier")
STEP_TYPES: Final = (
    "AGENT_ACTION", "APPROVAL_GATE", "HUMAN_TASK", "GOVERNANCE_CHECK", "WAIT_FOR_EVENT",
    "BRANCH", "PARALLEL", "NOTIFICATION",
)  # fmt: skip
#: The run input a tap webhook delivers; declared as the parameters of tap-triggered workflows.
TAP_PARAMETERS: Final = (
    ParameterSpec(name="provider", schema_={"type": "string"}),
    ParameterSpec(name="entity_type", schema_={"type": "string"}),
    ParameterSpec(name="entity_id", schema_={"type": "string"}),
    ParameterSpec(name="action", schema_={"type": "string"}),
    ParameterSpec(name="snapshot", schema_={"type": "object"}),
)
#: The variable holding the data passed from step to step (see docs/dialects.md).
PAYLOAD: Final = "payload"


@dataclass(frozen=True)
class V1Options:
    """Choices the v1 document does not make.

    ``actions`` maps an AGENT_ACTION step's ``skill_id`` or ``action_type`` to the action
    ref to call (by default the ``action_type`` itself). ``policy`` is the governance policy
    action. ``channels`` maps a ``notification_channel`` (``DELIVERY_CHANNEL_SLACK``) to
    extra ``core.notify`` input, e.g. ``{"channel": "webhook", "url": ..., "secret": ...}``;
    unmapped channels log. ``parameters`` declares more run inputs by name.
    """

    ref: str | None = None
    actions: Mapping[str, str] = field(default_factory=dict)
    policy: str = "core.risk_policy"
    channels: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    parameters: Sequence[str] = ()


@dataclass(frozen=True)
class V1Step:
    """One step as written: its id, short type (``AGENT_ACTION``), fields and position."""

    id: str
    type: str
    data: Mapping[str, Any]
    path: Path
    retry: RetrySpec | None = None
    own_retry: bool = False

    @property
    def name(self) -> str:
        return str(self.data.get("name") or self.id)


@dataclass(frozen=True)
class V1Edge:
    """One edge as written; ``condition`` is its raw ``condition_expr``."""

    source: str
    target: str
    label: str | None
    condition: str | None
    path: Path


@dataclass
class V1Document:
    """The checked parts of a version the task builder needs."""

    steps: list[V1Step]
    edges: list[V1Edge]
    retry: RetrySpec | None
    compensations: set[str]

    def outgoing(self, step_id: str) -> list[V1Edge]:
        return [edge for edge in self.edges if edge.source == step_id]

    def step(self, step_id: str) -> V1Step:
        return next(step for step in self.steps if step.id == step_id)


def read_workflows_v1(
    text: str, file: str, options: V1Options | None = None
) -> tuple[WorkflowSpec | None, list[Issue]]:
    """Read a v1 version; never raises for problems in it (they come back as issues)."""
    from treadle.common.dialects.v1_tasks import build_tasks

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
    document = _read_document(reader, version, base)
    if document is None or reader.fatal:
        return None, reader.sorted_issues()
    tasks = build_tasks(reader, document, options)
    fields: dict[str, Any] = {
        "ref": options.ref or _default_ref(version),
        "label": _text(definition, "name"),
        "description": _text(definition, "description") or _text(version, "description"),
        "version": None if version.get("version") is None else str(version["version"]),
        "parameters": _parameters(version, options),
        "vars": (PublishSpec(name=PAYLOAD, value="{{ parameters }}"),),
        "tasks": tasks,
        "output_map": {PAYLOAD: "{{ vars.payload }}"},
        "trigger": _trigger(reader, version.get("trigger"), (*base, "trigger")),
        "timeout": _seconds(reader, version.get("timeout_seconds"), (*base, "timeout_seconds")),
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


# -- the document ------------------------------------------------------------------------------


def _read_document(reader: JsonReader, version: dict[str, Any], base: Path) -> V1Document | None:
    raw_steps = version.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        reader.error((*base, "steps"), "the version needs a non-empty list of 'steps'", fatal=True)
        return None
    steps: list[V1Step] = []
    seen: dict[str, Path] = {}
    for index, raw in enumerate(raw_steps):
        step = _read_step(reader, raw, (*base, "steps", index))
        if step is None:
            continue
        if step.id in seen:
            reader.error((*step.path, "id"), f"step id '{step.id}' is used twice")
            continue
        seen[step.id] = step.path
        steps.append(step)
    edges = _read_edges(reader, version.get("edges"), (*base, "edges"), set(seen))
    compensations: set[str] = set()
    for step in steps:
        target = step.data.get("compensation_step_id")
        if target is None:
            continue
        path = (*step.path, "compensation_step_id")
        if not isinstance(target, str) or target not in seen:
            reader.error(
                path, f"unknown compensation step {target!r}{suggestion(str(target), seen)}"
            )
        elif target == step.id:
            reader.error(path, f"step '{step.id}' cannot compensate itself")
        else:
            compensations.add(target)
    retry = None
    if version.get("default_retry_policy") is not None:
        retry = read_retry(reader, version["default_retry_policy"], (*base, "default_retry_policy"))
    document = V1Document(steps, edges, retry, compensations)
    _check_cycles(reader, document, (*base, "edges"))
    return document


def _read_step(reader: JsonReader, raw: Any, path: Path) -> V1Step | None:
    if not isinstance(raw, dict):
        reader.error(path, "a step must be an object with 'id' and 'step_type'")
        return None
    step_id = raw.get("id")
    if not isinstance(step_id, str) or not step_id.strip():
        reader.error((*path, "id") if "id" in raw else path, "every step needs an 'id' (text)")
        return None
    if any(mark in step_id for mark in ("~", ":")):
        reader.error((*path, "id"), f"step id '{step_id}' may not contain '~' or ':'")
    reader.check_fields(raw, path, f"step '{step_id}'", STEP_FIELDS)
    written = raw.get("step_type")
    short = written.removeprefix("STEP_TYPE_") if isinstance(written, str) else None
    if short not in STEP_TYPES:
        choices = [f"STEP_TYPE_{name}" for name in STEP_TYPES]
        hint = suggestion(str(written), choices) if isinstance(written, str) else ""
        reader.error(
            (*path, "step_type") if "step_type" in raw else path,
            f"step '{step_id}' needs a 'step_type', one of {', '.join(choices)}; "
            f"got {written!r}{hint}",
        )
        return None
    for key in ("timeout_seconds",):
        if key in raw:
            _seconds(reader, raw[key], (*path, key))
    if raw.get("config") is not None and not isinstance(raw["config"], dict):
        reader.error((*path, "config"), "'config' must be an object")
    elif raw.get("config"):
        _unused_config(reader, raw["config"], (*path, "config"), short)
    retry = None
    if raw.get("retry_policy") is not None:
        retry = read_retry(reader, raw["retry_policy"], (*path, "retry_policy"))
    for key in (
        "name", "action_type", "skill_id", "agent_id", "prompt_name", "risk_level",
        "condition_expr", "notification_channel", "notification_template",
        "event_type_pattern", "event_subject_pattern", "required_capability",
    ):  # fmt: skip
        if raw.get(key) is not None and not isinstance(raw[key], str):
            reader.error((*path, key), f"'{key}' must be text, not {raw[key]!r}")
    return V1Step(step_id, short, raw, path, retry, raw.get("retry_policy") is not None)


def _unused_config(reader: JsonReader, config: dict[str, Any], path: Path, kind: str) -> None:
    """A step's ``config`` has no fields Treadle acts on: say so, field by field, rather than
    let a reader of the import believe they take effect (they stay under ``metadata``)."""
    for key, value in config.items():
        if key == "timeout_action" and kind in ("WAIT_FOR_EVENT", "HUMAN_TASK", "APPROVAL_GATE"):
            reader.warning(
                (*path, key),
                f"'timeout_action' {value!r} is not supported: when 'timeout_seconds' "
                "passes the step ends timed out (STEP_RUN_STATE_FAILED) and the run fails",
            )
        else:
            reader.warning(
                (*path, key),
                f"'{key}' in 'config' has no meaning in Treadle and is ignored "
                "(it is kept under metadata)",
            )


def _read_edges(reader: JsonReader, value: Any, path: Path, known: set[str]) -> list[V1Edge]:
    if value is None:
        return []
    if not isinstance(value, list):
        reader.error(path, "'edges' must be a list")
        return []
    edges: list[V1Edge] = []
    for index, raw in enumerate(value):
        edge_path = (*path, index)
        if not isinstance(raw, dict):
            reader.error(
                edge_path, "an edge must be an object with 'from_step_id' and 'to_step_id'"
            )
            continue
        reader.check_fields(raw, edge_path, "the edge", EDGE_FIELDS)
        ends: list[str] = []
        for key in ("from_step_id", "to_step_id"):
            step_id = raw.get(key)
            if not isinstance(step_id, str) or step_id not in known:
                reader.error(
                    (*edge_path, key) if key in raw else edge_path,
                    f"'{key}' names no step: {step_id!r}{suggestion(str(step_id), known)}",
                )
            else:
                ends.append(step_id)
        for key in ("label", "condition_expr"):
            if raw.get(key) is not None and not isinstance(raw[key], str):
                reader.error((*edge_path, key), f"'{key}' must be text")
        if len(ends) == 2:
            edges.append(
                V1Edge(ends[0], ends[1], raw.get("label"), raw.get("condition_expr"), edge_path)
            )
    return edges


def _check_cycles(reader: JsonReader, document: V1Document, path: Path) -> None:
    """workflows/v1 graphs are acyclic: report one cycle per strongly connected group."""
    successors: dict[str, list[str]] = {step.id: [] for step in document.steps}
    for edge in document.edges:
        successors[edge.source].append(edge.target)
    state: dict[str, int] = {}
    stack: list[str] = []
    reported: set[frozenset[str]] = set()

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in successors[node]:
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt) :]
                key = frozenset(cycle)
                if key not in reported:
                    reported.add(key)
                    reader.error(
                        path,
                        "the steps form a cycle: "
                        + " -> ".join([*cycle, nxt])
                        + "; workflows/v1 definitions must be acyclic",
                    )
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for step in document.steps:
        if step.id not in state:
            visit(step.id)


def read_retry(reader: JsonReader, value: Any, path: Path) -> RetrySpec | None:
    """A v1 retry policy as a :class:`RetrySpec` (``None`` when it retries nothing)."""
    policy = reader.mapping(value, path, "the retry policy")
    if policy is None:
        return None
    reader.check_fields(policy, path, "the retry policy", RETRY_FIELDS)
    count = reader.count(
        policy.get("max_retries"), (*path, "max_retries"), "'max_retries'", minimum=0
    )
    delay = _seconds(reader, policy.get("backoff_seconds"), (*path, "backoff_seconds"))
    multiplier = policy.get("backoff_multiplier", 1)
    backoff = Backoff.CONSTANT
    if isinstance(multiplier, bool) or not isinstance(multiplier, int | float) or multiplier < 1:
        reader.error((*path, "backoff_multiplier"), f"must be a number >= 1, not {multiplier!r}")
    elif multiplier == 2:
        backoff = Backoff.EXPONENTIAL
    elif multiplier != 1:
        backoff = Backoff.EXPONENTIAL
        reader.warning(
            (*path, "backoff_multiplier"),
            f"Treadle backs off by a factor of 1 or 2; {multiplier} is taken as 2 (exponential)",
        )
    if not count:
        return None
    return RetrySpec(count=count, delay=delay or timedelta(0), backoff=backoff)


# -- workflow-level fields -----------------------------------------------------------------------


def _trigger(reader: JsonReader, value: Any, path: Path) -> TriggerSpec | None:
    trigger = reader.mapping(value, path, "'trigger'")
    if trigger is None:
        return None
    reader.check_fields(trigger, path, "the trigger", TRIGGER_FIELDS)
    kind = trigger.get("trigger_type")
    filter_template = None
    if trigger.get("filter_expr") is not None:
        try:
            filter_template = "{{ " + translate(trigger["filter_expr"], event_data_resolver) + " }}"
        except ExpressionProblem as exc:
            reader.error((*path, "filter_expr"), f"cannot translate the filter: {exc}")
    if kind in ("TRIGGER_TYPE_MANUAL", "TRIGGER_TYPE_UNSPECIFIED", None):
        return None
    if kind == "TRIGGER_TYPE_WEBHOOK":
        given = [trigger.get(key) for key in ("tap_provider", "tap_entity_type", "tap_action")]
        parts = [part for part in given if isinstance(part, str) and part]
        if len(parts) != len(given):
            reader.error(
                path,
                "a webhook trigger needs 'tap_provider', 'tap_entity_type' and 'tap_action' "
                "(its events have the type '<provider>.<entity_type>.<action>')",
            )
            return None
        return TriggerSpec(type="event", event_type=".".join(parts), filter=filter_template)
    if kind == "TRIGGER_TYPE_EVENT":
        event_type = trigger.get("event_type")
        if not isinstance(event_type, str) or not event_type:
            reader.error(path, "an event trigger needs an 'event_type'")
            return None
        subject = trigger.get("event_subject")
        return TriggerSpec(
            type="event",
            event_type=event_type,
            subject=subject if isinstance(subject, str) and subject else None,
            filter=filter_template,
        )
    reader.error(
        (*path, "trigger_type"),
        f"trigger type {kind!r} is not supported; use TRIGGER_TYPE_WEBHOOK, TRIGGER_TYPE_EVENT "
        "or TRIGGER_TYPE_MANUAL",
    )
    return None


def _parameters(version: Mapping[str, Any], options: V1Options) -> tuple[ParameterSpec, ...]:
    declared: list[ParameterSpec] = []
    trigger = version.get("trigger")
    if isinstance(trigger, dict) and trigger.get("trigger_type") == "TRIGGER_TYPE_WEBHOOK":
        declared.extend(TAP_PARAMETERS)
    names = {p.name for p in declared}
    for name in options.parameters:
        if name not in names:
            declared.append(ParameterSpec(name=name))
            names.add(name)
    return tuple(declared)


def _default_ref(version: Mapping[str, Any]) -> str:
    name = version.get("definition_id") or version.get("id") or "workflow"
    return "workflows_v1." + ref_part(str(name), "wf")


def _seconds(reader: JsonReader, value: Any, path: Path) -> timedelta | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        reader.error(path, f"must be a number of seconds >= 0, not {value!r}")
        return None
    return timedelta(seconds=value) if value else None


def _text(data: Mapping[str, Any] | None, key: str) -> str | None:
    value = None if data is None else data.get(key)
    return value if isinstance(value, str) and value else None
