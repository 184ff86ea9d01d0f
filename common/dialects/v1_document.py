"""The workflows/v1 document as read and checked: its steps, edges and retry policies.

Split from :mod:`~treadle.common.dialects.workflows_v1` so that the document model the
task builder (:mod:`~treadle.common.dialects.v1_tasks`) consumes, with the
:class:`V1Options` it and the importer share, has a module of its own: both depend on it,
neither on the other. Reading reports every unknown field with its JSON path and checks
the graph rules of the dialect (edges between known steps, no cycles); nothing here builds
Treadle tasks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Final

from treadle.common.dialects.json_reader import JsonReader
from treadle.common.loader.reader import suggestion
from treadle.common.source import Path
from treadle.common.spec import Backoff, RetrySpec

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
RETRY_FIELDS: Final = ("max_retries", "backoff_seconds", "backoff_multiplier")
STEP_TYPES: Final = (
    "AGENT_ACTION", "APPROVAL_GATE", "HUMAN_TASK", "GOVERNANCE_CHECK", "WAIT_FOR_EVENT",
    "BRANCH", "PARALLEL", "NOTIFICATION",
)  # fmt: skip
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


# -- reading -------------------------------------------------------------------------------------


def read_document(reader: JsonReader, version: dict[str, Any], base: Path) -> V1Document | None:
    """The version's steps, edges and retry policy; ``None`` when it has no steps."""
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
            read_seconds(reader, raw[key], (*path, key))
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
    delay = read_seconds(reader, policy.get("backoff_seconds"), (*path, "backoff_seconds"))
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


def read_seconds(reader: JsonReader, value: Any, path: Path) -> timedelta | None:
    """A v1 number of seconds (``None`` when absent or zero); an error when not >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        reader.error(path, f"must be a number of seconds >= 0, not {value!r}")
        return None
    return timedelta(seconds=value) if value else None
