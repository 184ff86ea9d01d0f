"""Pack folders to a Catalog: both layouts, configuration, and problems that skip one file."""

from __future__ import annotations

import os
import textwrap
from pathlib import Path

import pytest

from treadle.common.loader import load_packs
from treadle.common.source import Severity
from treadle.common.spec import RunnerType

PACKS = Path(__file__).resolve().parent.parent / "data" / "loader" / "packs"
DEMO = PACKS / "demo"


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return root


def messages(catalog_issues: list) -> list[str]:
    return [f"{Path(i.loc.file).name}:{i.loc.line}: {i.message}" for i in catalog_issues]


def test_demo_pack_loads_clean() -> None:
    catalog = load_packs([DEMO])
    assert catalog.issues == []
    assert set(catalog.packs) == {"demo"}
    assert set(catalog.actions) == {"demo.greet", "demo.run_cmd", "demo.linked"}
    assert set(catalog.workflows) == {"demo.linked", "demo.loose", "demo.standalone"}


def test_pack_metadata_and_config_defaults() -> None:
    pack = load_packs([DEMO]).packs["demo"]
    assert pack.version == "1.2"
    assert pack.path == str(DEMO)
    assert [p.name for p in pack.config_schema] == ["region", "retries", "endpoint"]
    assert pack.config == {
        "region": "eu-west-1",  # default applied
        "retries": 5,
        "endpoint": "https://example.invalid",
    }


def test_python_action() -> None:
    greet = load_packs([DEMO]).actions["demo.greet"]
    assert greet.runner_type is RunnerType.PYTHON  # python-script is an alias
    assert greet.entry_point == "greet.py:greet"
    assert greet.base_dir == str(DEMO / "actions")
    assert os.path.isabs(greet.base_dir)
    assert greet.queue == "light"  # worker_selector
    assert [(p.name, p.required) for p in greet.parameters] == [("who", True), ("shout", False)]
    assert greet.output_schema == {"type": "object", "properties": {"greeting": {"type": "string"}}}
    assert greet.source.loc(("entry_point",)).line == 4


def test_shell_action_alias_and_enabled() -> None:
    action = load_packs([DEMO]).actions["demo.run_cmd"]
    assert action.runner_type is RunnerType.SHELL
    assert action.enabled is False


def test_split_layout_combines_both_files() -> None:
    catalog = load_packs([DEMO])
    spec = catalog.workflows["demo.linked"]
    action = catalog.actions["demo.linked"]
    assert action.runner_type is RunnerType.WORKFLOW
    assert action.workflow_file == "workflows/linked.workflow.yaml"
    assert catalog.kind_of("demo.linked") is RunnerType.WORKFLOW
    assert spec.label == "Linked workflow"
    assert spec.description == "Header in the action file, graph in the workflow file."
    assert spec.version == "2.0"
    assert [p.name for p in spec.parameters] == ["who"]
    assert spec.output_schema == {"type": "object", "properties": {"said": {"type": "string"}}}
    assert [t.name for t in spec.tasks] == ["hello"]
    # each part points at the file it was written in
    graph_file = str(DEMO / "actions" / "workflows" / "linked.workflow.yaml")
    action_file = str(DEMO / "actions" / "linked.yaml")
    assert spec.source.loc(("tasks", 0)).file == graph_file
    assert spec.source.loc(("tasks", 0)).line == 5
    assert spec.source.loc(("parameters", "who")).file == action_file
    assert spec.source.loc(("parameters", "who")).line == 7
    assert spec.source.loc(("ref",)).file == action_file


def test_standalone_workflows_get_a_ref_from_the_file_name() -> None:
    catalog = load_packs([DEMO])
    assert catalog.workflows["demo.standalone"].parameters[0].default == "world"
    assert "demo.loose" in catalog.workflows  # an unreferenced file in actions/workflows


def test_a_folder_of_packs() -> None:
    catalog = load_packs([PACKS])
    assert set(catalog.packs) == {"demo", "other"}
    assert catalog.actions["other.ping"].runner_type is RunnerType.HTTP
    assert catalog.issues == []


def test_the_same_folder_twice_is_loaded_once() -> None:
    catalog = load_packs([DEMO, PACKS])
    assert catalog.issues == []


def test_missing_entry_point_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pack.yaml": "ref: p\n",
            "actions/ok.yaml": "name: ok\nrunner_type: http\n",
            "actions/gone.yaml": "name: gone\nentry_point: nowhere.py:run\n",
            "actions/shape.yaml": "name: shape\nentry_point: nowhere.py\n",
        },
    )
    catalog = load_packs([tmp_path])
    assert set(catalog.actions) == {"p.ok"}
    found = messages(catalog.issues)
    assert found[0].startswith("gone.yaml:2: entry point file 'nowhere.py' does not exist")
    assert found[1] == (
        "shape.yaml:2: 'entry_point' must look like \"file.py:function\", not 'nowhere.py'"
    )


def test_duplicate_refs_name_both_files(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pack.yaml": "ref: p\n",
            "actions/a.yaml": "ref: p.same\nrunner_type: http\n",
            "actions/b.yaml": "name: same\nrunner_type: http\n",
            "workflows/same.yaml": "ref: p.same\ntasks: [{name: t, action: core.noop}]\n",
        },
    )
    catalog = load_packs([tmp_path])
    found = messages(catalog.issues)
    a, b, wf = (
        str(tmp_path / f) for f in ("actions/a.yaml", "actions/b.yaml", "workflows/same.yaml")
    )
    assert found == [
        f"b.yaml:1: 'p.same' is defined twice: in {a} and in {b}",
        f"same.yaml:1: 'p.same' is defined twice: in {a} and in {wf}",
    ]
    assert catalog.actions["p.same"].source.file == a


def test_duplicate_pack_refs(tmp_path: Path) -> None:
    write(tmp_path, {"one/pack.yaml": "ref: p\n", "two/pack.yaml": "ref: p\n"})
    catalog = load_packs([tmp_path])
    [issue] = catalog.issues
    assert (
        issue.message == f"pack 'p' is defined twice: in {tmp_path / 'one'} and {tmp_path / 'two'}"
    )


def test_a_broken_file_is_skipped_and_the_rest_loads(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pack.yaml": "ref: p\n",
            "actions/good.yaml": "name: good\nrunner_type: http\n",
            "actions/broken.yaml": "name: broken\nrunner_type: [http\n",
            "workflows/bad.yaml": "tasks:\n  - name: t\n    action: core.noop\n    retyr: 1\n",
            "workflows/fine.yaml": "tasks: [{name: t, action: p.good}]\n",
        },
    )
    catalog = load_packs([tmp_path])
    assert set(catalog.actions) == {"p.good"}
    assert set(catalog.workflows) == {"p.fine"}
    found = messages(catalog.issues)
    assert len(found) == 2
    assert found[0].startswith("broken.yaml:3: YAML syntax error")
    assert found[1] == "bad.yaml:4: unknown field 'retyr' in task 't' (did you mean 'retry'?)"


def test_config_problems(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pack.yaml": """\
                ref: p
                config_schema:
                  token: {type: string, required: true}
                  port: {type: integer, default: 80}
                """,
            "config.yaml": "port: eighty\nextra: 1\n",
        },
    )
    catalog = load_packs([tmp_path])
    found = sorted(messages(catalog.issues))
    assert found == [
        "config.yaml:1: config of pack 'p': missing required parameter 'token'",
        "config.yaml:1: config of pack 'p': parameter 'port': 'eighty' is not of type 'integer'",
        "config.yaml:1: config of pack 'p': unknown parameter 'extra' (known: port, token)",
    ]
    assert catalog.packs["p"].config == {"port": "eighty", "extra": 1}


def test_config_without_schema_is_taken_as_is(tmp_path: Path) -> None:
    write(tmp_path, {"pack.yaml": "ref: p\n", "config.yaml": "anything: [1, 2]\n"})
    catalog = load_packs([tmp_path])
    assert catalog.issues == []
    assert catalog.pack_config("p") == {"anything": [1, 2]}


def test_pack_file_problems(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "a/pack.yaml": "label: no ref\n",
            "b/pack.yaml": "ref: b\nvesion: 1\n",
            "c/pack.yaml": "ref: c\n",
            "c/actions/flow.yaml": "name: flow\nworkflow_file: workflows/absent.yaml\n",
        },
    )
    catalog = load_packs([tmp_path])
    found = messages(catalog.issues)
    assert found == [
        "pack.yaml:1: pack.yaml needs a 'ref' (the pack's name, e.g. 'examples')",
        "pack.yaml:2: unknown field 'vesion' in pack.yaml (did you mean 'version'?)",
        "flow.yaml:2: workflow file 'workflows/absent.yaml' does not exist",
    ]
    assert catalog.issues[1].severity is Severity.WARNING
    assert set(catalog.packs) == {"b", "c"}


def test_unknown_action_fields_are_warnings(tmp_path: Path) -> None:
    write(
        tmp_path,
        {"pack.yaml": "ref: p\n", "actions/x.yaml": "name: x\nrunner_type: http\nnotes: hi\n"},
    )
    catalog = load_packs([tmp_path])
    [issue] = catalog.issues
    assert issue.severity is Severity.WARNING
    assert issue.message == "unknown field 'notes' in the action"
    assert "p.x" in catalog.actions


def test_bad_runner_type(tmp_path: Path) -> None:
    write(tmp_path, {"pack.yaml": "ref: p\n", "actions/x.yaml": "name: x\nrunner_type: pyhton\n"})
    [issue] = load_packs([tmp_path]).issues
    assert "'runner_type' must be one of" in issue.message
    assert "(did you mean 'python'?)" in issue.message


def test_paths_that_are_not_packs(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    catalog = load_packs([tmp_path / "absent", tmp_path / "empty"])
    assert [i.message for i in catalog.issues] == [
        "no such pack folder",
        "no pack.yaml in this folder or in its subfolders",
    ]


@pytest.mark.parametrize("layout", ["workflows", "actions/workflows"])
def test_standalone_workflow_locations(tmp_path: Path, layout: str) -> None:
    write(
        tmp_path,
        {
            "pack.yaml": "ref: p\n",
            f"{layout}/w.workflow.yaml": "tasks:\n  - name: t\n    action: x.y\n",
        },
    )
    spec = load_packs([tmp_path]).workflows["p.w"]
    loc = spec.source.loc(spec.tasks[0].path)
    assert (Path(loc.file).name, loc.line) == ("w.workflow.yaml", 2)


def test_policy_marks_a_governance_policy_and_must_be_a_boolean(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "pack.yaml": "ref: p\n",
            "actions/check.yaml": "name: check\nrunner_type: http\npolicy: true\n",
            "actions/plain.yaml": "name: plain\nrunner_type: http\n",
            "actions/wrong.yaml": "name: wrong\nrunner_type: http\npolicy: sometimes\n",
        },
    )
    catalog = load_packs([tmp_path])
    assert (catalog.actions["p.check"].policy, catalog.actions["p.plain"].policy) == (True, False)
    assert "p.wrong" not in catalog.actions
    [problem] = messages(catalog.issues)
    assert problem.startswith("wrong.yaml:3:")
    assert "'policy'" in problem
