"""Starting a rule's action for one match, and recording the match, in one transaction.

Timer fires (:mod:`.rule_timers`, inside beat's fire transaction) and outside events
(:mod:`.rule_events`) both end here. The rule's templates see ``trigger`` (the payload:
a timer's ``fired_at`` ..., an event's ``data``), ``event`` (``{id, type, subject,
data}``) and ``rule`` (``{ref, name, pack}``), sandboxed like every template. In order:

1. every ``criteria`` expression must hold, else the match is ``criteria_false``;
2. the action's parameters are rendered;
3. the action is found: a published workflow (its latest version, as the rule's workspace
   sees it), else an action of the process's packs or of the registry (what the
   scheduler registered), run as a one-task workflow ``rules.<rule ref>``
   (published like any definition: a new version only when it changes);
4. the run starts (idempotency key ``rule:<rule id>:<trigger key>``, so a match repeated
   starts nothing new), or the match is ``failed_to_start`` with the reason.

The match is recorded with its outcome, the payload's SHA-256, and the payload itself
when it is a timer's (an event's is the recorded event, named by its id).
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from treadle.common.catalog import Catalog
from treadle.common.errors import ExpressionError, NotFound, TreadleError
from treadle.common.expr import TemplateEngine
from treadle.common.spec import ActionSpec, ParameterSpec, RunnerType, TaskSpec, WorkflowSpec
from treadle.scheduler.service.definitions import (
    Definitions,
    PinnedDefinition,
    owner_when_publishing,
)
from treadle.scheduler.service.deletions import WorkflowDeleted
from treadle.scheduler.service.starting import RunOptions, RunStarter
from treadle.scheduler.store import UnitOfWork
from treadle.scheduler.store.rule_repo import MatchRow, RuleRow

__all__ = ["MatchOutcome", "RuleLaunch", "TriggerFire", "one_task_workflow"]

log = logging.getLogger("treadle.rules")

#: The task name of a single action's one-task run.
TASK = "run"


class MatchOutcome(StrEnum):
    """What one match of a rule did."""

    STARTED = "started"
    CRITERIA_FALSE = "criteria_false"
    FAILED_TO_START = "failed_to_start"


@dataclass(frozen=True)
class TriggerFire:
    """What matched a rule: the key it is recorded under, the payload templates see as
    ``trigger``, the event as ``event``, and (a timer's) ``system.schedule``."""

    key: str
    payload: Mapping[str, Any]
    event: Mapping[str, Any]
    event_id: str | None = None
    keep_payload: bool = False
    schedule: Mapping[str, Any] | None = field(default=None)


def payload_digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def one_task_workflow(rule: RuleRow, action: ActionSpec, given: Mapping[str, Any]) -> WorkflowSpec:
    """A single action as a workflow of one task ``run`` whose input is the rule's
    parameters (checked against the action's declared ones, if it declares any)."""
    declared = action.parameters or tuple(ParameterSpec(name=str(k)) for k in sorted(given))
    passed = sorted({*map(str, given), *(p.name for p in declared if p.has_default)})
    return WorkflowSpec(
        ref=f"rules.{rule.ref}",
        description=f"rule {rule.ref}: action {action.ref} as a one-task run",
        parameters=declared,
        tasks=(
            TaskSpec(
                name=TASK,
                action=action.ref,
                input={name: f"{{{{ parameters[{json.dumps(name)}] }}}}" for name in passed},
            ),
        ),
        output_map={"result": f"{{{{ task.{TASK}.result }}}}"},
    )


def _action_spec(row: Mapping[str, Any]) -> ActionSpec:
    raw = row.get("parameters")
    return ActionSpec(
        ref=str(row["ref"]),
        runner_type=RunnerType(str(row.get("runner_type") or RunnerType.PYTHON.value)),
        queue=row.get("queue"),
        parameters=tuple(ParameterSpec.model_validate(p) for p in raw or ()),
    )


class RuleLaunch:
    """Checks criteria, renders parameters, starts the action, records the match."""

    def __init__(
        self,
        starter: RunStarter,
        *,
        clock: Callable[[], datetime],
        engine: TemplateEngine | None = None,
    ) -> None:
        self.starter = starter
        self.clock = clock
        self.engine = engine or TemplateEngine()

    def launch(self, uow: UnitOfWork, rule: RuleRow, fire: TriggerFire) -> MatchRow | None:
        """Handle one match in ``uow``; the match recorded, or ``None`` when its key was
        recorded before (nothing else happened then)."""
        context = {
            "trigger": dict(fire.payload),
            "event": dict(fire.event),
            "rule": {"ref": rule.ref, "name": rule.name, "pack": rule.pack},
        }
        outcome, run_id, reason = self._start(uow, rule, fire, context)
        match = MatchRow(
            id=f"rm-{uuid.uuid4().hex[:16]}",
            rule_id=rule.id,
            workspace=rule.workspace,
            trigger_key=fire.key,
            matched_at=self.clock(),
            trigger_type=rule.trigger_type,
            event_id=fire.event_id,
            payload=dict(fire.payload) if fire.keep_payload else None,
            payload_digest=payload_digest(fire.payload),
            outcome=outcome.value,
            run_id=run_id,
            reason=reason,
        )
        if not uow.record_match(match):
            return None
        log.info("rule %s matched %s: %s %s", rule.ref, fire.key, outcome.value,
                 run_id or reason or "")  # fmt: skip
        return match

    def _start(
        self, uow: UnitOfWork, rule: RuleRow, fire: TriggerFire, context: dict[str, Any]
    ) -> tuple[MatchOutcome, str | None, str | None]:
        try:
            for criterion in rule.criteria:
                if not self.engine.truthy(criterion, context):
                    return MatchOutcome.CRITERIA_FALSE, None, f"criterion {criterion!r} is false"
            parameters = self.engine.render(dict(rule.action_parameters), context)
        except ExpressionError as exc:
            return MatchOutcome.FAILED_TO_START, None, f"a template cannot be evaluated: {exc}"
        options = RunOptions(
            identity={"login": f"rule:{rule.ref}", "via": "rule", "rule": rule.ref},
            idempotency_key=f"rule:{rule.id}:{fire.key}",
            workspace=rule.workspace,
            schedule=dict(fire.schedule) if fire.schedule is not None else None,
        )
        try:
            with uow.connection.begin_nested():  # a refused start leaves nothing behind
                pinned = self._target(uow, rule, parameters)
                started = self.starter.start_pinned_in(uow, pinned, parameters, options)
        except TreadleError as exc:
            log.warning("rule %s could not start %s: %s", rule.ref, rule.action_ref, exc)
            return MatchOutcome.FAILED_TO_START, None, str(exc) or type(exc).__name__
        return MatchOutcome.STARTED, started.run_id, None

    def _target(
        self, uow: UnitOfWork, rule: RuleRow, parameters: Mapping[str, Any]
    ) -> PinnedDefinition:
        """The workflow to start: the action's own, or a one-task workflow around it."""
        definitions = self.starter.definitions
        try:
            return definitions.pinned(rule.action_ref, None, uow, workspace=rule.workspace)
        except WorkflowDeleted:
            raise
        except NotFound:
            pass
        action = definitions.catalog.actions.get(rule.action_ref)  # this process's packs
        if action is None:
            row = uow.registered_action(rule.action_ref)  # what the scheduler registered
            if row is not None and row.get("runner_type") != RunnerType.WORKFLOW.value:
                action = _action_spec(row)
        if action is None or action.runner_type is RunnerType.WORKFLOW:
            raise NotFound(f"no workflow or action {rule.action_ref!r} is published or registered")
        spec = one_task_workflow(rule, action, parameters)
        wrapper = Definitions(self.starter.runs.store, Catalog(actions={action.ref: action}))
        owner = owner_when_publishing(uow, spec.ref, rule.workspace)
        return wrapper.publish(
            spec, at=self.clock(), author=f"rule:{rule.ref}", uow=uow, workspace=owner
        )
