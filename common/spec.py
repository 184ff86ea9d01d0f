"""Typed models of what users write: workflows, tasks, transitions, actions and packs.

The loader turns YAML (Attune layouts) or JSON (workflows/v1, AOS plans) into these models;
everything downstream — validation, graph compilation, the scheduler core — reads only these.
Legacy Attune fields (``on_success``, ``decision`` ...) are already converted to ``next``
transitions here, so the rest of the engine knows one shape.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from treadle.common.budget import Budget
from treadle.common.source import Path, SourceMap


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)


def _is_none(value: Any) -> bool:
    return value is None


def _is_empty(value: Any) -> bool:
    return not value


class TaskType(StrEnum):
    """What a task does: call an action, run nested tasks side by side, or start a workflow."""

    ACTION = "action"
    PARALLEL = "parallel"
    WORKFLOW = "workflow"


class Backoff(StrEnum):
    """How retry delays grow: ``delay``, ``delay * n``, or ``delay * 2**(n-1)``."""

    CONSTANT = "constant"
    LINEAR = "linear"
    EXPONENTIAL = "exponential"


class RunnerType(StrEnum):
    """How an action is executed.

    ``python``, ``shell`` and ``http`` run on a worker; ``inquiry`` is handled by the
    scheduler (it asks a person); ``workflow`` starts a child run.
    """

    PYTHON = "python"
    SHELL = "shell"
    HTTP = "http"
    INQUIRY = "inquiry"
    WORKFLOW = "workflow"


class ParameterSpec(_Frozen):
    """One declared input of a workflow or action, in the flat schema style.

    ``schema_`` is the JSON Schema of the value (``type``, ``enum``, ``items``, ``minimum`` ...)
    without the flat-style extras ``required``, ``secret`` and ``default``, which have fields.
    """

    name: str
    schema_: dict[str, Any] = Field(default_factory=dict)
    required: bool = False
    secret: bool = False
    has_default: bool = False
    default: Any = None
    description: str | None = None


class RetrySpec(_Frozen):
    """Retries after the first attempt: ``count`` more tries spaced by ``delay`` and ``backoff``."""

    count: int = Field(default=0, ge=0)
    delay: timedelta = timedelta(0)
    backoff: Backoff = Backoff.CONSTANT
    max_delay: timedelta | None = None


class PublishSpec(_Frozen):
    """Assign a workflow variable when a transition fires; ``value`` may be a template."""

    name: str
    value: Any = None


class TransitionSpec(_Frozen):
    """After a task ends: if ``when`` holds (``None`` means always), publish, then start ``do``.

    ``path`` locates the transition in the source (for legacy fields, the legacy key).
    """

    when: str | None = None
    publish: tuple[PublishSpec, ...] = ()
    do: tuple[str, ...] = ()
    path: Path = ()


class InquirySpec(_Frozen):
    """A question to a person: the answer must satisfy ``schema`` (JSON Schema)."""

    prompt: Any = None
    schema_: dict[str, Any] | None = None
    assigned_to: Any = None
    timeout: timedelta | None = None


class EventWaitSpec(_Frozen):
    """An outside event to wait for: its ``type``, and optional ``subject`` and ``filter``."""

    type: str
    subject: str | None = None
    filter: str | None = None


class WaitForSpec(_Frozen):
    """Hold a task until a person answers or an event arrives (or ``timeout`` passes).

    ``inquiry`` is either a question Treadle asks when the task is reached, or a template
    giving the id of an inquiry that already exists.
    """

    inquiry: InquirySpec | str | None = None
    event: EventWaitSpec | None = None
    timeout: timedelta | None = None


class CompensationSpec(_Frozen):
    """The action that undoes a task, run when the run is compensated."""

    action: str
    input: dict[str, Any] = Field(default_factory=dict)


class ConcurrencyKeySpec(_Frozen):
    """At most ``limit`` holders of the rendered ``key`` at once, across runs.

    On a task the holders are its attempts; on a workflow, its runs (``docs/flow-control.md``).
    """

    key: str
    limit: int = Field(ge=1)


class RateLimitSpec(_Frozen):
    """At most ``limit`` attempts of the rendered ``key`` start per ``period``; more wait.

    ``key`` defaults to the task's action, so every task that declares it shares the limit.
    """

    limit: int = Field(ge=1)
    period: timedelta
    key: str | None = Field(default=None, exclude_if=_is_none)


class EscalationAskSpec(_Frozen):
    """The question an escalated task puts to a person: retry it, skip it (with an output),
    or fail it. ``prompt`` and ``assigned_to`` may be templates; unanswered after
    ``timeout``, the task fails as it would have."""

    prompt: Any = None
    assigned_to: Any = None
    timeout: timedelta | None = None


class EscalationSpec(_Frozen):
    """What happens when a task's retries are exhausted (the kOS spec's escalation to
    manual intervention): ``notify`` sends ``core.notify`` with this input, ``ask`` opens
    an inquiry and the task waits for the answer."""

    notify: dict[str, Any] | None = None
    ask: EscalationAskSpec | None = None


class TaskSpec(_Frozen):
    """One node of a workflow.

    ``join`` is ``"all"`` or a count of inbound transitions; ``None`` runs the task each time
    an inbound transition fires. ``tasks`` holds the nested tasks of a ``parallel`` task.
    """

    name: str
    type: TaskType = TaskType.ACTION
    action: str | None = None
    input: dict[str, Any] = Field(default_factory=dict)
    next: tuple[TransitionSpec, ...] = ()
    with_items: str | list[Any] | None = None
    batch_size: int | None = Field(default=None, ge=1)
    concurrency: int | None = Field(default=None, ge=1)
    retry: RetrySpec | None = None
    timeout: timedelta | None = None
    delay: timedelta | None = None
    join: Literal["all"] | int | None = None
    when: str | None = None
    wait_for: WaitForSpec | None = None
    tasks: tuple[TaskSpec, ...] = ()
    compensate: CompensationSpec | None = None
    queue: str | None = None
    #: Flow control (``docs/flow-control.md``); left out of dumps when unset, so existing
    #: definitions hash the same.
    priority: int | None = Field(default=None, ge=0, le=9, exclude_if=_is_none)
    concurrency_key: ConcurrencyKeySpec | None = Field(default=None, exclude_if=_is_none)
    rate_limit: RateLimitSpec | None = Field(default=None, exclude_if=_is_none)
    #: Budgets and escalation (``docs/governance.md``); left out of dumps when unset.
    cost_estimate_usd: float | None = Field(default=None, ge=0, exclude_if=_is_none)
    cost_ceiling_usd: float | None = Field(default=None, ge=0, exclude_if=_is_none)
    escalate: EscalationSpec | None = Field(default=None, exclude_if=_is_none)
    path: Path = ()


class TriggerSpec(_Frozen):
    """What starts runs of a definition on its own: an event type (and filter) or a schedule.

    A ``cron`` or ``interval`` trigger is a schedule ``treadle beat`` fires
    (``docs/schedules.md``); its fields beyond ``type``, ``cron`` and ``parameters`` are
    left out of dumps when unset, so definitions written before them hash the same.
    """

    type: Literal["event", "cron", "webhook", "interval"]
    event_type: str | None = None
    subject: str | None = None
    filter: str | None = None
    cron: str | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)
    name: str | None = Field(default=None, exclude_if=_is_none)
    interval: timedelta | None = Field(default=None, exclude_if=_is_none)
    timezone: str | None = Field(default=None, exclude_if=_is_none)
    start: datetime | None = Field(default=None, exclude_if=_is_none)
    end: datetime | None = Field(default=None, exclude_if=_is_none)
    jitter: timedelta | None = Field(default=None, exclude_if=_is_none)
    overlap: str | None = Field(default=None, exclude_if=_is_none)
    catchup_window: timedelta | None = Field(default=None, exclude_if=_is_none)
    missed: str | None = Field(default=None, exclude_if=_is_none)
    pause_on_failure: bool | None = Field(default=None, exclude_if=_is_none)
    enabled: bool | None = Field(default=None, exclude_if=_is_none)

    @property
    def is_schedule(self) -> bool:
        return self.type in ("cron", "interval")


class WorkflowSpec(_Frozen):
    """A whole workflow definition, as loaded from any supported dialect."""

    ref: str
    label: str | None = None
    description: str | None = None
    version: str | None = None
    parameters: tuple[ParameterSpec, ...] = ()
    output_schema: dict[str, Any] | None = None
    vars: tuple[PublishSpec, ...] = ()
    tasks: tuple[TaskSpec, ...] = ()
    output_map: dict[str, Any] = Field(default_factory=dict)
    trigger: TriggerSpec | None = None
    #: More triggers (``trigger:`` written as a list, or ``triggers:``); left out of dumps
    #: when empty, so existing definitions hash the same.
    triggers: tuple[TriggerSpec, ...] = Field(default=(), exclude_if=_is_empty)
    timeout: timedelta | None = None
    #: A run's priority when its start does not give one, and the key that caps how many
    #: runs hold it at once; left out of dumps when unset.
    priority: int | None = Field(default=None, ge=0, le=9, exclude_if=_is_none)
    concurrency_key: ConcurrencyKeySpec | None = Field(default=None, exclude_if=_is_none)
    #: What a run may spend (``docs/governance.md``); left out of dumps when unset.
    budget: Budget | None = Field(default=None, exclude_if=_is_none)
    dialect: str = "attune"
    #: Facts about the definition that do not change how it runs, kept with it (e.g. the
    #: original step names and types of an imported workflows/v1 version, which renderers
    #: of runs read). Left out of dumps when empty, so existing definitions hash the same.
    metadata: dict[str, Any] = Field(default_factory=dict, exclude_if=_is_empty)
    source: SourceMap = Field(default_factory=lambda: SourceMap("<memory>"))

    @property
    def pack(self) -> str:
        """The pack part of ``ref`` (``examples`` in ``examples.hello``)."""
        return self.ref.split(".", 1)[0] if "." in self.ref else ""

    @property
    def all_triggers(self) -> tuple[TriggerSpec, ...]:
        """``trigger`` (if any) then ``triggers``."""
        return ((self.trigger,) if self.trigger is not None else ()) + self.triggers


class ActionSpec(_Frozen):
    """An action a task can call, from a pack's ``actions/<name>.yaml``.

    ``base_dir`` is the folder of the action file; ``entry_point`` (``file.py:function``)
    is relative to it. ``queue`` routes the action's tasks to a separate worker pool.
    """

    ref: str
    description: str | None = None
    runner_type: RunnerType = RunnerType.PYTHON
    entry_point: str | None = None
    parameters: tuple[ParameterSpec, ...] = ()
    output_schema: dict[str, Any] | None = None
    queue: str | None = None
    #: Every task calling this action shares this limit (``docs/flow-control.md``); left
    #: out of dumps when unset.
    rate_limit: RateLimitSpec | None = Field(default=None, exclude_if=_is_none)
    enabled: bool = True
    #: A governance policy: its result must be ``{"decision": "allow" | "require_approval"
    #: | "deny", "reason": ...}``, and the worker fails the attempt (``PolicyDenied``) on deny.
    policy: bool = False
    #: The action changes something outside (a write, a POST): each of its attempts gets an
    #: ``idempotency_key``, the same across retries and redeliveries (docs/packs.md).
    side_effects: bool = False
    base_dir: str | None = None
    workflow_file: str | None = None
    source: SourceMap = Field(default_factory=lambda: SourceMap("<memory>"))

    @property
    def pack(self) -> str:
        return self.ref.split(".", 1)[0]


class WebhookSpec(_Frozen):
    """A webhook a pack declares in ``pack.yaml``: deliveries to ``POST
    /api/v1/webhooks/<name>`` become events of ``event_type``, signed with the secret held
    by the keystore secret entry ``keystore_secret`` (a pack file never holds the secret)."""

    name: str
    event_type: str
    keystore_secret: str


class PackSpec(_Frozen):
    """A folder of actions and workflows with a ``pack.yaml`` and optional configuration."""

    ref: str
    version: str | None = None
    description: str | None = None
    config_schema: tuple[ParameterSpec, ...] = ()
    config: dict[str, Any] = Field(default_factory=dict)
    path: str | None = None
    webhooks: tuple[WebhookSpec, ...] = ()
