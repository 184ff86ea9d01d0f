"""The Treadle tasks of a checked workflows/v1 version: one per step, plus a few helpers.

Each step becomes a task named by its id, in definition order; edges become transitions.
A step reached by several transitions joins them (``join: all``): exclusive branches and
parallel fan-outs meet the same way, since an inbound transition that can no longer fire
is not waited for. Helpers added next to a step, named with a suffix a step id cannot
contain:

* ``<governance step>:approval``: the approval asked when the policy requires it;
* ``<step>:rejected``: a ``core.fail`` ending the run when an approval is rejected.

The data passed along the steps is the workflow variable ``payload``: the run's input at
first, then each AGENT_ACTION's result, a HUMAN_TASK's answer or an awaited event's data.
Steps read it as their ``payload`` input. A step only reached as another step's
``compensation_step_id`` is not part of the flow: it becomes that step's ``compensate``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Final

from treadle.common.dialects.json_reader import JsonReader
from treadle.common.dialects.shared import (
    APPROVAL_SUFFIX,
    REJECTED_SUFFIX,
    condition,
    quoted,
    task_expression,
    with_paths,
)
from treadle.common.dialects.v1_document import (
    PAYLOAD,
    V1Document,
    V1Edge,
    V1Options,
    V1Step,
)
from treadle.common.dialects.v1_expressions import (
    ExpressionProblem,
    step_output_resolver,
    translate,
)
from treadle.common.source import Path
from treadle.common.spec import (
    CompensationSpec,
    PublishSpec,
    RetrySpec,
    TaskSpec,
    TransitionSpec,
)

#: What an approval's answer must look like.
APPROVAL_SCHEMA: Final = {
    "type": "object",
    "properties": {"approved": {"type": "boolean"}, "comment": {"type": "string"}},
    "required": ["approved"],
}
#: The step fields an AGENT_ACTION task passes to its action, when the step has them.
AGENT_INPUTS: Final = ("action_type", "agent_id", "prompt_name", "skill_id", "required_capability")
SUCCEEDED: Final = "succeeded()"
PAYLOAD_VALUE: Final = "{{ vars.payload }}"
_PUBLISH: Final = {
    "AGENT_ACTION": "{{ result() }}",
    "HUMAN_TASK": "{{ result().response }}",
    "WAIT_FOR_EVENT": "{{ result().data }}",
}


class _Task:
    """A task being built (transitions are completed once every task exists)."""

    def __init__(self, name: str, **fields: Any) -> None:
        self.name = name
        self.fields = fields
        self.next: list[TransitionSpec] = []


def build_tasks(
    reader: JsonReader, document: V1Document, options: V1Options
) -> tuple[TaskSpec, ...]:
    """The tasks of ``document``; problems are reported on ``reader``."""
    return _Builder(reader, document, options).build()


class _Builder:
    def __init__(self, reader: JsonReader, document: V1Document, options: V1Options) -> None:
        self.reader = reader
        self.doc = document
        self.options = options
        self.step_ids = [step.id for step in document.steps]
        self.resolve = step_output_resolver(self.step_ids)

    def build(self) -> tuple[TaskSpec, ...]:
        linked = {edge.source for edge in self.doc.edges} | {edge.target for edge in self.doc.edges}
        tasks: list[_Task] = []
        for step in self.doc.steps:
            if step.id in self.doc.compensations and step.id not in linked:
                continue  # only a compensation: not part of the flow
            tasks.extend(self._step(step))
        inbound: dict[str, int] = {}
        for task in tasks:
            for transition in task.next:
                for target in transition.do:
                    inbound[target] = inbound.get(target, 0) + 1
        built: list[TaskSpec] = []
        for index, task in enumerate(tasks):
            fields = dict(task.fields)
            if inbound.get(task.name, 0) > 1:
                fields["join"] = "all"
            built.append(
                TaskSpec(
                    name=task.name,
                    path=("tasks", index),
                    next=with_paths(index, task.next),
                    **{k: v for k, v in fields.items() if v is not None},
                )
            )
        return tuple(built)

    # -- steps -----------------------------------------------------------------------------

    def _step(self, step: V1Step) -> list[_Task]:
        tasks = self._step_tasks(step)
        target = step.data.get("compensation_step_id")
        if tasks and isinstance(target, str) and target in self.step_ids and target != step.id:
            tasks[0].fields["compensate"] = self._compensation(step, self.doc.step(target))
        return tasks

    def _step_tasks(self, step: V1Step) -> list[_Task]:
        edges = self.doc.outgoing(step.id)
        kind = step.type
        if kind == "GOVERNANCE_CHECK":
            return self._governance(step, edges)
        if kind == "APPROVAL_GATE":
            return self._approval_gate(step, edges)
        if kind == "BRANCH":
            return [self._branch(step, edges)]
        action, given = self._call(step)
        if action is None:
            return []
        task = _Task(step.id, action=action, input=given, **self._limits(step))
        publish = _PUBLISH.get(kind)
        values = (PublishSpec(name=PAYLOAD, value=publish),) if publish else ()
        task.next = self._edges(step, edges, [SUCCEEDED], values)
        return [task]

    def _call(self, step: V1Step) -> tuple[str | None, dict[str, Any]]:
        """The action and input of a step that is one plain call."""
        data = step.data
        kind = step.type
        if kind == "AGENT_ACTION":
            given: dict[str, Any] = {PAYLOAD: PAYLOAD_VALUE}
            given.update({key: data[key] for key in AGENT_INPUTS if data.get(key) is not None})
            return self._agent_action(step), given
        if kind == "HUMAN_TASK":
            prompt = {"step": step.name, "step_id": step.id, PAYLOAD: PAYLOAD_VALUE}
            return "core.ask", {"prompt": prompt, **_ask_timeout(data)}
        if kind == "WAIT_FOR_EVENT":
            pattern = data.get("event_type_pattern")
            if not isinstance(pattern, str) or not pattern:
                self.reader.error(
                    step.path, f"WAIT_FOR_EVENT step '{step.id}' needs an 'event_type_pattern'"
                )
                return None, {}
            wait: dict[str, Any] = {"type": pattern}
            if data.get("event_subject_pattern"):
                wait["subject"] = data["event_subject_pattern"]
            return "core.wait_for_event", {**wait, **_ask_timeout(data)}
        if kind == "NOTIFICATION":
            return "core.notify", self._notification(step)
        return "core.noop", {}  # PARALLEL: fans out to its edges

    def _agent_action(self, step: V1Step) -> str | None:
        mapped = self.options.actions
        data = step.data
        for key in ("skill_id", "action_type"):
            value = data.get(key)
            if isinstance(value, str) and value in mapped:
                return mapped[value]
        action_type = data.get("action_type")
        if (
            isinstance(action_type, str)
            and "." in action_type.strip(".")
            and " " not in action_type
        ):
            return action_type
        if isinstance(action_type, str):
            self.reader.error(
                (*step.path, "action_type"),
                f"action_type '{action_type}' of step '{step.id}' is not an action ref "
                f"(pack.action); map it to one (treadle import --map {action_type}=pack.action)",
            )
        else:
            self.reader.error(
                step.path,
                f"AGENT_ACTION step '{step.id}' needs an 'action_type' (or a mapped 'skill_id') "
                "naming the action to call",
            )
        return None

    def _notification(self, step: V1Step) -> dict[str, Any]:
        data = step.data
        channel = data.get("notification_channel")
        template = data.get("notification_template")
        given: dict[str, Any] = {
            "channel": "log",
            "message": template or step.name,
            "run_id": "{{ system.run_id }}",
            "task": step.id,
            "payload": {
                "step_name": step.name,
                "notification_channel": channel,
                "notification_template": template,
                "data": PAYLOAD_VALUE,
            },
        }
        if isinstance(channel, str) and channel in self.options.channels:
            given.update(dict(self.options.channels[channel]))
        return given

    def _governance(self, step: V1Step, edges: list[V1Edge]) -> list[_Task]:
        data = step.data
        if not data.get("risk_level"):
            self.reader.error(step.path, f"GOVERNANCE_CHECK step '{step.id}' needs a 'risk_level'")
        given = {key: data.get(key) for key in ("action_type", "risk_level")}
        check = _Task(step.id, action=self.options.policy, input=given, **self._limits(step))
        approval = _Task(
            step.id + APPROVAL_SUFFIX,
            action="core.ask",
            input={
                "prompt": {
                    "step": step.name,
                    "step_id": step.id,
                    "action_type": data.get("action_type"),
                    "risk_level": data.get("risk_level"),
                    "reason": "{{ " + _task(step.id) + ".result.reason }}",
                    PAYLOAD: PAYLOAD_VALUE,
                },
                "schema": APPROVAL_SCHEMA,
            },
        )
        needs = "result().decision == 'require_approval'"
        passes = "result().decision != 'require_approval'"
        check.next = [
            TransitionSpec(when=condition(SUCCEEDED, needs), do=(approval.name,)),
            *self._edges(step, edges, [SUCCEEDED, passes], ()),
        ]
        rejected = self._rejected(step, f"the approval required by governance check '{step.id}'")
        approval.next = self._approved_edges(step, edges, rejected.name)
        return [check, approval, rejected]

    def _approval_gate(self, step: V1Step, edges: list[V1Edge]) -> list[_Task]:
        data = step.data
        prompt = {"step": step.name, "step_id": step.id, PAYLOAD: PAYLOAD_VALUE}
        prompt.update({key: data[key] for key in ("action_type", "risk_level") if data.get(key)})
        gate = _Task(
            step.id,
            action="core.ask",
            input={"prompt": prompt, "schema": APPROVAL_SCHEMA, **_ask_timeout(data)},
        )
        rejected = self._rejected(step, f"approval '{step.id}'")
        gate.next = self._approved_edges(step, edges, rejected.name)
        return [gate, rejected]

    def _approved_edges(
        self, step: V1Step, edges: list[V1Edge], rejected: str
    ) -> list[TransitionSpec]:
        return [
            *self._edges(step, edges, [SUCCEEDED, "result().approved"], ()),
            TransitionSpec(when=condition(SUCCEEDED, "not result().approved"), do=(rejected,)),
        ]

    def _rejected(self, step: V1Step, what: str) -> _Task:
        return _Task(
            step.id + REJECTED_SUFFIX,
            action="core.fail",
            input={"message": f"{what} was rejected"},
        )

    def _branch(self, step: V1Step, edges: list[V1Edge]) -> _Task:
        values: dict[str, str] = {}
        given: dict[str, Any] = {}
        written = step.data.get("condition_expr")
        if isinstance(written, str) and written.strip():
            value = self._translate(written, (*step.path, "condition_expr"), self.resolve)
            if value is not None:
                name = _value_name(written)
                values[name] = value
                given = {"value_name": name, "value": "{{ " + value + " }}"}
        resolve = step_output_resolver(self.step_ids, values=values)
        branches: list[dict[str, Any]] = []
        transitions: list[TransitionSpec] = []
        labels: set[str] = set()
        for edge in edges:
            label = edge.label or edge.target
            if label in labels:
                self.reader.error(
                    (*edge.path, "label"),
                    f"two edges of BRANCH step '{step.id}' have the label '{label}'",
                )
            labels.add(label)
            holds: Any = True
            if edge.condition:
                translated = self._translate(
                    edge.condition, (*edge.path, "condition_expr"), resolve
                )
                holds = "{{ " + (translated or "false") + " }}"
            branches.append({"label": label, "holds": holds})
            chosen = f"result().selected_edge == {quoted(label)}"
            transitions.append(TransitionSpec(when=condition(SUCCEEDED, chosen), do=(edge.target,)))
        if not edges:
            self.reader.error(step.path, f"BRANCH step '{step.id}' has no outgoing edges")
        task = _Task(
            step.id,
            action="core.branch",
            input={"branches": branches, **given},
            **self._limits(step),
        )
        task.next = transitions
        return task

    # -- shared parts ------------------------------------------------------------------------

    def _edges(
        self,
        step: V1Step,
        edges: Sequence[V1Edge],
        gate: list[str],
        publish: tuple[PublishSpec, ...],
    ) -> list[TransitionSpec]:
        """Transitions for ``edges`` under the ``gate`` terms: one for the unconditional
        targets (with ``publish``), then one per conditional edge, each independent."""
        plain = tuple(edge.target for edge in edges if not edge.condition)
        out: list[TransitionSpec] = []
        if plain or publish:
            out.append(TransitionSpec(when=condition(*gate), publish=publish, do=plain))
        for edge in edges:
            if not edge.condition:
                continue
            translated = self._translate(
                edge.condition, (*edge.path, "condition_expr"), self.resolve
            )
            out.append(
                TransitionSpec(when=condition(*gate, translated or "false"), do=(edge.target,))
            )
        return out

    def _limits(self, step: V1Step) -> dict[str, Any]:
        """The task's timeout (for steps that call a worker action) and retry policy."""
        fields: dict[str, Any] = {}
        seconds = _positive(step.data.get("timeout_seconds"))
        waits = step.type in ("HUMAN_TASK", "WAIT_FOR_EVENT", "APPROVAL_GATE")
        if not waits and seconds is not None:
            fields["timeout"] = timedelta(seconds=seconds)
        if step.type == "AGENT_ACTION":
            fields["retry"] = self._retry(step)
        return fields

    def _retry(self, step: V1Step) -> RetrySpec | None:
        return step.retry if step.own_retry else self.doc.retry

    def _compensation(self, step: V1Step, target: V1Step) -> CompensationSpec | None:
        if target.type not in ("AGENT_ACTION", "NOTIFICATION"):
            self.reader.error(
                (*step.path, "compensation_step_id"),
                f"compensation step '{target.id}' is a {target.type} step; a compensation must "
                "be an AGENT_ACTION or a NOTIFICATION",
            )
            return None
        action, given = self._call(target)
        return None if action is None else CompensationSpec(action=action, input=given)

    def _translate(
        self, text: str, path: Path, resolve: Callable[[Sequence[str]], str | None]
    ) -> str | None:
        try:
            return translate(text, resolve)
        except ExpressionProblem as exc:
            self.reader.error(
                path,
                f"cannot translate {text!r}: {exc} (a step's output is "
                "<step id with '_' for '-'>.output.<field>)",
            )
            return None


def _value_name(expression: str) -> str:
    """The name a BRANCH step's value goes by: the last part of a plain dotted name."""
    text = expression.strip()
    parts = [part.strip() for part in text.split(".")]
    if all(part.isidentifier() for part in parts):
        return parts[-1]
    return "value"


def _task(name: str) -> str:
    return task_expression(name)


def _ask_timeout(data: Any) -> dict[str, Any]:
    seconds = data.get("timeout_seconds")
    return {"timeout": seconds} if _positive(seconds) is not None else {}


def _positive(value: Any) -> float | None:
    """``value`` as seconds when it is a positive number."""
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        return float(value)
    return None
