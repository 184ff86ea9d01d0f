"""A pack's workflow tests file (``tests/test_workflows.yaml``), read and checked.

The file is a list of tests, each a mapping (``docs/packs.md``)::

    - name: adds and doubles              # required, unique
      workflow: examples.sequential_publish   # required: a workflow of the loaded packs
      parameters: {a: 2, b: 3}            # checked against the workflow, defaults applied
      results: {add_numbers: {result: {sum: 5}}}   # per task (and attempt, and item)
      answers: {approve: {approved: true}}          # inquiry answers per task
      children: {call_sub: {result: {x: 1}}}        # child run outcomes per task
      seed: 7
      budget: {cost_usd: 10}              # the budget the start gives
      budget_ceiling: {cost_usd: 5}       # the workspace's ceiling
      budget_answers: [{continue: true}]  # answers to the run's budget inquiries
      controls: [{at: 60, do: resume, budget: {cost_usd: 20}}]   # at seconds: controls, events
      expect: {status: succeeded, sequence: [...], tasks: {...}, output: {...}}

Everything is checked before anything runs: unknown fields (with a suggestion), a
workflow the packs do not have, parameters the workflow refuses, task names the workflow
does not have, outcomes that are not ``{result}``, ``{error}`` or ``{hang}``, expectation
keys that do not exist, budgets, answers and controls that are not what the scenario files
take (``script_keys``). Each problem is an :class:`Issue` at the file, line and column of
the field. Pure: the caller reads the file.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from treadle.common.catalog import Catalog
from treadle.common.errors import ParameterError
from treadle.common.graph import Graph
from treadle.common.loader import parse_yaml
from treadle.common.loader.reader import Reader, suggestion
from treadle.common.params import resolve_parameters
from treadle.common.source import Issue, Loc, Path, Severity
from treadle.common.validate import checked_workflow
from treadle.scheduler.rehearsal import ScriptedOutcome
from treadle.scheduler.workflow_tests.expectations import EXPECT_KEYS, PER_TASK_KEYS
from treadle.scheduler.workflow_tests.script_keys import SCRIPT_KEYS, ScriptKeys
from treadle.scheduler.workflow_tests.scripted_run import RunScript

#: The fields of one test.
TEST_FIELDS: Final = (
    "name",
    "description",
    "workflow",
    "parameters",
    "results",
    "answers",
    "children",
    "seed",
    *SCRIPT_KEYS,
    "expect",
)


@dataclass(frozen=True)
class WorkflowTest:
    """One test of the file: its name, where it is, the workflow's graph, the run and the
    expectations."""

    name: str
    loc: Loc
    graph: Graph
    script: RunScript
    expect: Mapping[str, Any]


def read_test_file(
    text: str, file: str, catalog: Catalog
) -> tuple[list[WorkflowTest], list[Issue]]:
    """The tests in ``text`` (the contents of ``file``) and every problem found in it."""
    document = parse_yaml(text, file)
    reader = Reader(document)
    tests: list[WorkflowTest] = []
    if document.ok and not isinstance(document.data, list):
        reader.error((), "a workflow tests file is a list of tests (each with name, "
                     "workflow and expect)")  # fmt: skip
    elif document.ok:
        names: set[str] = set()
        for index, entry in enumerate(document.data):
            test = _Test(reader, catalog, index).read(entry, names)
            if test is not None:
                tests.append(test)
    issues = reader.sorted_issues()
    if any(issue.severity is Severity.ERROR for issue in issues):
        return [], issues
    return tests, issues


class _Test:
    """Reads one entry, recording each problem at its path."""

    def __init__(self, reader: Reader, catalog: Catalog, index: int) -> None:
        self.reader = reader
        self.catalog = catalog
        self.path: Path = (index,)
        self.label = f"test {index + 1}"

    def at(self, *parts: Any) -> Path:
        return (*self.path, *parts)

    def error(self, path: Path, message: str) -> None:
        self.reader.error(path, f"{self.label}: {message}")

    def read(self, entry: Any, names: set[str]) -> WorkflowTest | None:
        reader = self.reader
        before = len(reader.issues)
        data = reader.mapping(entry, self.path, self.label)
        if data is None:
            if entry is None:
                self.error(self.path, "an empty entry; a test is a mapping")
            return None
        reader.check_fields(data, self.path, self.label, TEST_FIELDS)
        name = self._name(data, names)
        graph = self._workflow(data)
        for required in ("workflow", "expect"):
            if required not in data:
                self.error(self.path, f"needs '{required}'")
        parameters = self._parameters(data, graph)
        tasks = set() if graph is None else set(graph.nodes)
        results = self._per_task(data, "results", tasks, outcomes=True)
        answers = self._per_task(data, "answers", tasks)
        children = self._per_task(data, "children", tasks, outcomes=True)
        seed = reader.count(data.get("seed"), self.at("seed"), f"{self.label}: 'seed'", minimum=0)
        keys = ScriptKeys(reader, self.path, self.label, frozenset(tasks))
        budget = keys.budget(data, "budget")
        ceiling = keys.budget(data, "budget_ceiling")
        budget_answers = keys.budget_answers(data)
        controls = keys.controls(data)
        expect = self._expect(data, tasks)
        if graph is None or name is None or len(reader.issues) > before:
            return None
        pack = graph.ref.rsplit(".", 1)[0]
        script = RunScript(
            parameters=parameters,
            results=results or {},
            answers=answers,
            children=children,
            seed=seed or 0,
            config=self.catalog.pack_config(pack),
            budget=budget,
            budget_ceiling=ceiling,
            budget_answers=budget_answers,
            controls=controls,
        )
        return WorkflowTest(name, reader.loc(self.path), graph, script, expect)

    def _name(self, data: Mapping[Any, Any], names: set[str]) -> str | None:
        name = self.reader.text(data.get("name"), self.at("name"), f"{self.label}: 'name'")
        if name is None:
            if "name" not in data:
                self.error(self.path, "needs 'name'")
            return None
        self.label = f"test '{name}'"
        if name in names:
            self.error(self.at("name"), f"another test is named '{name}' already")
        names.add(name)
        return name

    def _workflow(self, data: Mapping[Any, Any]) -> Graph | None:
        path = self.at("workflow")
        ref = self.reader.text(data.get("workflow"), path, f"{self.label}: 'workflow'")
        if ref is None:
            return None
        spec = self.catalog.workflows.get(ref)
        if spec is None:
            hint = suggestion(ref, self.catalog.workflows)
            self.error(path, f"no workflow '{ref}' in the loaded packs{hint}")
            return None
        problems, graph = checked_workflow(spec, self.catalog)
        errors = [p for p in problems if p.severity is Severity.ERROR]
        if graph is None or errors:
            first = errors[0] if errors else "it does not compile"
            self.error(path, f"workflow '{ref}' is not valid: {first}")
            return None
        return graph

    def _parameters(self, data: Mapping[Any, Any], graph: Graph | None) -> dict[str, Any]:
        path = self.at("parameters")
        given = self.reader.mapping(data.get("parameters"), path, f"{self.label}: 'parameters'")
        if graph is None:
            return dict(given or {})
        try:
            return resolve_parameters(graph.workflow.parameters, given or {})
        except ParameterError as exc:
            self.error(path if "parameters" in data else self.path, str(exc))
            return {}

    def _per_task(
        self, data: Mapping[Any, Any], key: str, tasks: set[str], *, outcomes: bool = False
    ) -> dict[str, Any] | None:
        path = self.at(key)
        given = self.reader.mapping(data.get(key), path, f"{self.label}: '{key}'")
        if given is None:
            return None
        for task, spec in given.items():
            self._task_name(path, str(task), tasks, key)
            if outcomes:
                self._outcomes(self.at(key, task), spec, f"{key}.{task}")
        return {str(task): spec for task, spec in given.items()}

    def _task_name(self, path: Path, task: str, tasks: set[str], key: str) -> None:
        if tasks and task not in tasks:
            hint = suggestion(task, tasks)
            self.error((*path, task), f"{key}: the workflow has no task '{task}'{hint}")

    def _outcomes(self, path: Path, spec: Any, what: str) -> None:
        if isinstance(spec, Mapping) and "items" in spec:
            items = spec["items"]
            if not isinstance(items, list):
                self.error((*path, "items"), f"{what}.items must be a list of outcomes")
                return
            for index, item in enumerate(items):
                self._outcomes((*path, "items", index), item, f"{what}.items[{index}]")
            if "default" in spec:
                self._outcomes((*path, "default"), spec["default"], f"{what}.default")
            return
        for attempt, outcome in enumerate(spec if isinstance(spec, list) else [spec]):
            where = (*path, attempt) if isinstance(spec, list) else path
            try:
                ScriptedOutcome.parse(outcome)
            except (ValueError, TypeError) as exc:
                self.error(where, f"{what}: {exc}")

    def _expect(self, data: Mapping[Any, Any], tasks: set[str]) -> dict[str, Any]:
        path = self.at("expect")
        expect = self.reader.mapping(data.get("expect"), path, f"{self.label}: 'expect'")
        if expect is None:
            return {}
        self.reader.check_fields(expect, path, f"{self.label}: expect", sorted(EXPECT_KEYS))
        for key in PER_TASK_KEYS & set(expect):
            per_task = self.reader.mapping(expect[key], (*path, key), f"{self.label}: expect.{key}")
            for task in per_task or {}:
                self._task_name((*path, key), str(task), tasks, f"expect.{key}")
        return {str(k): v for k, v in expect.items() if k in EXPECT_KEYS}
