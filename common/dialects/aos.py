"""AOS plans (steps with skills, params and dependencies) to :class:`WorkflowSpec` (``"aos"``).

Accepted documents: a plan ``{"steps": [...]}``; a request or test case holding one
(``{"plan": {...}}``, ``{"input": {"plan": {...}}}``); an execution plan ``{"data":
{"plan_id", "steps": [...]}}`` whose steps name an ``action`` and numeric ``dependencies``;
and a recorded trace's ``{"plan": [{skill, params}, ...]}``, whose steps run one after the
other. The plan is kept in ``spec.metadata["aos"]``.

Each step becomes a task named by its ``step_id`` calling its skill (``skill.http_call``
is the action ``skill.http_call``; a bare name gets the ``aos.`` pack unless mapped).
``params`` is the input, with ``{{s1.body}}`` references rewritten to
``{{ task.s1.result.body }}``, plus ``seed``: a number derived from the run's seed and the
step id, the same on every replay of the run. Dependencies become transitions (a step with
several waits for all of them) and every dependant is guarded so it runs only when its
dependencies allow it:

* ``on_error: abort`` (the default): a failure fails the run;
* ``continue``: a failure is handled, and dependants run anyway;
* ``skip``: a failure is handled, and dependants (and theirs) are skipped.

``retry_count`` is the number of retries (immediately, without delay). The policy
enforcer's cost fields, in cents, become the budget and costs in dollars
(:mod:`~treadle.common.dialects.aos_costs`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from treadle.common.dialects.aos_costs import (
    PLAN_COST_FIELDS,
    STEP_COST_FIELDS,
    plan_budget,
    step_costs,
)
from treadle.common.dialects.json_reader import JsonReader, read_json
from treadle.common.dialects.shared import (
    AOS,
    AOS_METADATA,
    condition,
    ref_part,
    task_expression,
    with_paths,
)
from treadle.common.errors import DefinitionError
from treadle.common.loader.reader import suggestion
from treadle.common.source import Issue, Path, Severity, SourceMap
from treadle.common.spec import RetrySpec, TaskSpec, TransitionSpec, WorkflowSpec

STEP_FIELDS: Final = (
    "step_id", "skill", "action", "params", "depends_on", "dependencies", "on_error",
    "retry_count", "description", *STEP_COST_FIELDS,
)  # fmt: skip
PLAN_FIELDS: Final = (
    "steps", "metadata", "plan_id", "checkpoint_interval", "deterministic", "hash_algorithm",
    *PLAN_COST_FIELDS,
)  # fmt: skip
ON_ERROR: Final = ("abort", "continue", "skip")
#: The input key carrying a step's seed.
SEED: Final = "seed"
_REFERENCE: Final = re.compile(r"\{\{\s*([A-Za-z0-9_\-]+)((?:\.[A-Za-z_][A-Za-z0-9_]*)*)\s*\}\}")
_MIX: Final = 2654435761  # Knuth's multiplicative hash constant
_MODULUS: Final = 2**32


@dataclass(frozen=True)
class AosOptions:
    """``skills`` maps a skill (or action) name to an action ref; ``default_pack`` is the
    pack of bare names; ``seed`` adds the per-step ``seed`` input."""

    ref: str | None = None
    skills: Mapping[str, str] = field(default_factory=dict)
    default_pack: str = "aos"
    seed: bool = True


@dataclass(frozen=True)
class _Step:
    name: str
    skill: str
    params: Any
    depends_on: tuple[str, ...]
    on_error: str
    retry_count: int
    path: Path
    costs: Mapping[str, float] = field(default_factory=dict)


def read_aos(
    text: str, file: str, options: AosOptions | None = None
) -> tuple[WorkflowSpec | None, list[Issue]]:
    """Read an AOS plan; never raises for problems in it (they come back as issues)."""
    options = options or AosOptions()
    reader, data = read_json(text, file)
    if data is None:
        return None, reader.sorted_issues()
    found = _plan(data)
    if found is None:
        reader.error(
            (),
            "no AOS plan here: expected 'steps', 'plan', 'input.plan' or 'data.steps'",
            fatal=True,
        )
        return None, reader.sorted_issues()
    plan, path, sequential = found
    steps = _read_steps(reader, plan, path, sequential)
    tasks = _tasks(reader, steps, options) if not reader.has_errors else ()
    plan_id = plan.get("plan_id") if isinstance(plan, dict) else None
    budget = plan_budget(reader, plan, path)
    if reader.has_errors:
        return None, reader.sorted_issues()
    spec = WorkflowSpec(
        ref=options.ref or "aos." + ref_part(str(plan_id or "plan"), "plan"),
        tasks=tasks,
        output_map={step.name: "{{ " + task_expression(step.name) + ".result }}" for step in steps},
        dialect=AOS,
        budget=budget,
        source=SourceMap(file),  # errors found later name the imported file
        metadata={AOS_METADATA: {"plan": plan, **({"plan_id": plan_id} if plan_id else {})}},
    )
    return spec, reader.sorted_issues()


def import_aos(text: str, file: str, options: AosOptions | None = None) -> WorkflowSpec:
    """The imported spec; raise :class:`DefinitionError` with every error found."""
    spec, issues = read_aos(text, file, options)
    if spec is None or any(issue.severity is Severity.ERROR for issue in issues):
        raise DefinitionError(issues)
    return spec


def looks_like_aos(data: Any) -> bool:
    """Whether ``data`` holds an AOS plan (for telling the dialects apart)."""
    return _plan(data) is not None


def step_seed(run_seed: int, step: str) -> int:
    """A step's seed, as its ``seed`` input computes it (for tools and tests)."""
    return (run_seed * _MIX + _step_constant(step)) % _MODULUS


# -- reading -----------------------------------------------------------------------------------


def _plan(data: Any) -> tuple[Any, Path, bool] | None:
    """The plan in ``data``, where it is, and whether its steps run one after the other."""
    if not isinstance(data, dict):
        return None
    inner = data.get("input")
    if isinstance(inner, dict) and isinstance(inner.get("plan"), dict | list):
        return _as_plan(inner["plan"], ("input", "plan"))
    if isinstance(data.get("plan"), dict | list):
        return _as_plan(data["plan"], ("plan",))
    wrapped = data.get("data")
    if isinstance(wrapped, dict) and isinstance(wrapped.get("steps"), list):
        return wrapped, ("data",), False
    if isinstance(data.get("steps"), list) and "version" not in data:
        return data, (), False
    return None


def _as_plan(plan: Any, path: Path) -> tuple[Any, Path, bool]:
    return plan, path, isinstance(plan, list)


def _read_steps(reader: JsonReader, plan: Any, path: Path, sequential: bool) -> list[_Step]:
    if isinstance(plan, dict):
        reader.check_fields(plan, path, "the plan", PLAN_FIELDS)
        raw_steps = plan.get("steps")
        steps_path: Path = (*path, "steps")
    else:
        raw_steps = plan
        steps_path = path
    if not isinstance(raw_steps, list) or not raw_steps:
        reader.error(steps_path, "the plan needs a non-empty list of steps", fatal=True)
        return []
    steps: list[_Step] = []
    names: set[str] = set()
    for index, raw in enumerate(raw_steps):
        step_path = (*steps_path, index)
        if not isinstance(raw, dict):
            reader.error(step_path, "a step must be an object with a 'skill'")
            continue
        reader.check_fields(raw, step_path, "the step", STEP_FIELDS)
        written = raw.get("step_id")
        name = f"step-{index}" if written is None else str(written)
        if isinstance(written, bool) or not isinstance(written, str | int | None) or not name:
            reader.error((*step_path, "step_id"), "'step_id' must be text or a number")
            continue
        if name in names:
            reader.error((*step_path, "step_id"), f"step id '{name}' is used twice")
        names.add(name)
        skill = raw.get("skill", raw.get("action"))
        if not isinstance(skill, str) or not skill.strip():
            reader.error(
                step_path, f"step '{name}' needs a 'skill' (or 'action') naming what it runs"
            )
            continue
        on_error = reader.choice(
            raw.get("on_error", "abort"), (*step_path, "on_error"), "'on_error'", ON_ERROR
        )
        retry = reader.count(
            raw.get("retry_count"), (*step_path, "retry_count"), "'retry_count'", minimum=0
        )
        depends = _dependencies(reader, raw, step_path)
        if sequential and index > 0 and not depends:
            depends = (steps[-1].name,) if steps else ()
        steps.append(
            _Step(
                name,
                skill,
                raw.get("params", {}),
                depends,
                on_error or "abort",
                retry or 0,
                step_path,
                step_costs(reader, raw, step_path),
            )
        )
    _check_dependencies(reader, steps)
    return steps


def _dependencies(reader: JsonReader, raw: dict[str, Any], path: Path) -> tuple[str, ...]:
    found: list[str] = []
    for key in ("depends_on", "dependencies"):
        value = raw.get(key)
        if value is None:
            continue
        if not isinstance(value, list) or not all(
            isinstance(item, str | int) and not isinstance(item, bool) for item in value
        ):
            reader.error((*path, key), f"'{key}' must be a list of step ids")
            continue
        found.extend(str(item) for item in value)
    return tuple(dict.fromkeys(found))


def _check_dependencies(reader: JsonReader, steps: list[_Step]) -> None:
    names = {step.name for step in steps}
    for step in steps:
        for dependency in step.depends_on:
            if dependency not in names:
                reader.error(
                    step.path,
                    f"step '{step.name}' depends on unknown step '{dependency}'"
                    + suggestion(dependency, names),
                )
            elif dependency == step.name:
                reader.error(step.path, f"step '{step.name}' depends on itself")
    order = {step.name: step for step in steps}
    done: set[str] = set()
    visiting: list[str] = []

    def visit(name: str) -> None:
        if name in done or name not in order:
            return
        if name in visiting:
            cycle = [*visiting[visiting.index(name) :], name]
            reader.error(
                order[name].path, "the steps depend on each other in a cycle: " + " -> ".join(cycle)
            )
            return
        visiting.append(name)
        for dependency in order[name].depends_on:
            if dependency != name:
                visit(dependency)
        visiting.pop()
        done.add(name)

    for step in steps:
        visit(step.name)


# -- tasks -------------------------------------------------------------------------------------


def _tasks(reader: JsonReader, steps: list[_Step], options: AosOptions) -> tuple[TaskSpec, ...]:
    names = [step.name for step in steps]
    by_name = {step.name: step for step in steps}
    dependants: dict[str, list[str]] = {name: [] for name in names}
    for step in steps:
        for dependency in step.depends_on:
            dependants[dependency].append(step.name)
    before = _ancestors(steps)
    tasks: list[TaskSpec] = []
    for index, step in enumerate(steps):
        given = _references(
            reader, step.params, (*step.path, "params"), set(names), (step.name, before[step.name])
        )
        if not isinstance(given, dict):
            reader.error((*step.path, "params"), "'params' must be an object")
            given = {}
        if options.seed and SEED not in given:
            given[SEED] = _seed_template(step.name)
        targets = tuple(dependants[step.name])
        transitions: list[TransitionSpec] = []
        if targets:
            gate = None if step.on_error != "abort" else "not failed() and not timed_out()"
            transitions.append(TransitionSpec(when=condition(gate), do=targets))
        guard = condition(*(_ready(by_name[d]) for d in step.depends_on))
        fields: dict[str, Any] = {
            "when": guard,
            "retry": RetrySpec(count=step.retry_count) if step.retry_count else None,
            "join": "all" if len(step.depends_on) > 1 else None,
        }
        tasks.append(
            TaskSpec(
                name=step.name,
                action=_action(step.skill, options),
                input=given,
                next=with_paths(index, transitions),
                path=("tasks", index),
                **step.costs,
                **{k: v for k, v in fields.items() if v is not None},
            )
        )
    return tuple(tasks)


def _ready(dependency: _Step) -> str:
    """What a dependant requires of ``dependency`` before it runs."""
    status = task_expression(dependency.name) + ".status"
    if dependency.on_error == "continue":
        return f"{status} != 'skipped'"
    return f"{status} == 'succeeded'"


def _action(skill: str, options: AosOptions) -> str:
    if skill in options.skills:
        return options.skills[skill]
    return skill if "." in skill else f"{options.default_pack}.{skill}"


def _ancestors(steps: list[_Step]) -> dict[str, frozenset[str]]:
    """The steps each step runs after: its dependencies, theirs, and so on."""
    by_name = {step.name: step for step in steps}
    found: dict[str, frozenset[str]] = {}

    def of(name: str) -> frozenset[str]:
        if name not in found:
            found[name] = frozenset()  # the plan is acyclic (checked); this only ends recursion
            direct = [d for d in by_name[name].depends_on if d in by_name]
            found[name] = frozenset(direct).union(*(of(d) for d in direct))
        return found[name]

    return {step.name: of(step.name) for step in steps}


def _references(
    reader: JsonReader,
    value: Any,
    path: Path,
    names: set[str],
    reader_step: tuple[str, frozenset[str]],
) -> Any:
    """``value`` with ``{{s1.body}}`` rewritten to ``{{ task.s1.result.body }}``.

    ``reader_step`` is the step whose params these are and the steps it runs after: a
    reference to any other step would read a result that may not exist yet.
    """
    if isinstance(value, str):

        def rewrite(match: re.Match[str]) -> str:
            step, rest = match.group(1), match.group(2)
            if step not in names:
                reader.error(
                    path,
                    f"'{match.group()}' refers to unknown step '{step}'" + suggestion(step, names),
                )
                return match.group()
            own, before = reader_step
            if step == own:
                reader.error(path, f"'{match.group()}' in step '{own}' reads its own result")
            elif step not in before:
                reader.error(
                    path,
                    f"'{match.group()}' reads step '{step}', which step '{own}' does not "
                    f"depend on, so it may not have run yet; add '{step}' to its 'depends_on'",
                )
            return "{{ " + task_expression(step) + ".result" + rest + " }}"

        return _REFERENCE.sub(rewrite, value)
    if isinstance(value, dict):
        return {
            str(k): _references(reader, v, (*path, k), names, reader_step) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_references(reader, v, (*path, i), names, reader_step) for i, v in enumerate(value)]
    return value


def _step_constant(step: str) -> int:
    return int.from_bytes(hashlib.sha256(step.encode("utf-8")).digest()[:4], "big")


def _seed_template(step: str) -> str:
    return (
        "{{ (system.seed * "
        + str(_MIX)
        + " + "
        + str(_step_constant(step))
        + ") % "
        + str(_MODULUS)
        + " }}"
    )
