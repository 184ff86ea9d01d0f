"""``treadle import`` (JSON to pack YAML that round-trips), ``treadle runs render|golden``
and ``treadle golden verify``.

Round trip: import -> YAML -> ``load_workflow_text`` -> a spec equal to the imported one,
source locations aside, for every conformance document of both dialects. The commands are
run as a user runs them: the ``treadle`` executable on a SQLite file of its own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from treadle.common.dialects import import_text, spec_to_yaml
from treadle.common.loader import load_workflow_text
from treadle.common.spec import WorkflowSpec
from treadle.testing.cli import TreadleCli
from treadle.testing.processes import treadle_environment

from .conftest import CONFORMANCE, STUBS

Cli = TreadleCli
DOCUMENTS = [
    ("workflows-v1", "publish_version_response.json"),
    ("aos", "workflow_multi_skill.json"),
    ("aos", "m4_execution_plan.json"),
    ("aos", "golden_trace.json"),
]


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """``cli(*args)``: the ``treadle`` command in tmp_path, on its own SQLite file."""
    env = treadle_environment(database_url=f"sqlite:///{tmp_path / 'cli.db'}")
    return TreadleCli(tmp_path, env, in_process=True)


def comparable(spec: WorkflowSpec) -> dict[str, Any]:
    data: dict[str, Any] = spec.model_dump(exclude={"source"})
    return data


@pytest.mark.parametrize(("folder", "name"), DOCUMENTS)
def test_imported_yaml_loads_back_to_the_same_spec(folder: str, name: str) -> None:
    path = CONFORMANCE / folder / name
    if not path.is_file():
        pytest.skip(f"conformance document {path} not found")
    imported = import_text(path.read_text(encoding="utf-8"), str(path))
    loaded = load_workflow_text(spec_to_yaml(imported), "imported.yaml")
    assert comparable(loaded) == comparable(imported)
    assert loaded.dialect == folder


def test_import_writes_yaml_that_round_trips(cli: Cli, v1_dir: Path, tmp_path: Path) -> None:
    source = v1_dir / "publish_version_response.json"
    result = cli("import", source, "--pack-path", STUBS, "-o", "sdr.yaml")
    assert result.code == 0, result.stderr
    assert "wrote workflows_v1.wf_outbound_sdr (11 tasks) to sdr.yaml" in result.stderr
    assert "config.timeout_action: 'timeout_action' 'follow_up' is not supported" in result.stderr
    text = (tmp_path / "sdr.yaml").read_text(encoding="utf-8")
    assert text.startswith("# Imported from publish_version_response.json (workflows-v1)")
    # the approval schema two steps share is written out twice, not as a YAML alias
    assert text.count("required:\n      - approved") == 2
    assert "&id" not in text
    assert "*id" not in text
    loaded = load_workflow_text(text, "sdr.yaml")
    imported = import_text(source.read_text(encoding="utf-8"), str(source))
    assert comparable(loaded) == comparable(imported)


def test_import_prints_to_stdout_and_names_the_plan_after_the_file(cli: Cli, aos_dir: Path) -> None:
    result = cli("import", aos_dir / "workflow_multi_skill.json", "--pack-path", STUBS)
    assert result.code == 0, result.stderr
    assert result.stderr == ""
    spec = load_workflow_text(result.stdout, "stdout.yaml")
    assert (spec.ref, spec.dialect) == ("aos.workflow_multi_skill", "aos")


def test_import_reports_problems_by_json_path_and_writes_nothing(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"steps": [{"id": "a", "step_type": "STEP_TYPE_AGENT_ACTION", "action_type": "x.y",  # noqa: E501
                               "colour": "red"}], "edges": []}, indent=1),
        encoding="utf-8",
    )  # fmt: skip
    result = cli("import", bad, "-o", "out.yaml")
    assert result.code == 2
    assert f"{bad}:7:4: steps[0].colour: unknown field 'colour' in step 'a'" in result.stderr
    assert not (tmp_path / "out.yaml").exists()


def test_import_warns_about_actions_no_pack_has(cli: Cli, aos_dir: Path) -> None:
    plan = aos_dir / "m4_execution_plan.json"
    refused = cli("import", plan, "--map", "store_result=core.noop")
    assert refused.code == 2
    assert (
        f"{plan}: task '3' gives input 'seed' that 'core.noop' does not declare" in refused.stderr
    )
    result = cli("import", plan, "--map", "store_result=core.noop", "--no-seed")
    assert result.code == 0, result.stderr
    assert "warning: unknown action 'aos.fetch_data' in task '1'" in result.stderr
    assert "core.noop" in result.stdout


def test_an_imported_file_runs_and_renders_with_its_golden_record(
    cli: Cli, v1_dir: Path, tmp_path: Path
) -> None:
    assert cli("import", v1_dir / "publish_version_response.json", "-o", "sdr.yaml").code == 0
    started = cli(
        "run", "sdr.yaml", "--pack-path", STUBS, "-q", "--json",
        "-p", "provider=hubspot", "-p", 'snapshot={"deal_value_usd": 100}',
    )  # fmt: skip
    assert started.code == 3, started.stderr  # waiting for the reply event
    run_id = json.loads(started.stdout)["id"]

    shown = cli("runs", "show", run_id, "--format", "workflows-v1")
    assert shown.code == 0, shown.stderr
    run = json.loads(shown.stdout)["run"]
    assert [s["state"].removeprefix("STEP_RUN_STATE_") for s in run["steps"]] == [
        "COMPLETED", "COMPLETED", "COMPLETED", "COMPLETED", "PENDING",
        "COMPLETED", "COMPLETED", "WAITING",
    ]  # fmt: skip
    events = json.loads(
        cli("runs", "render", run_id, "--format", "workflows-v1", "--events").stdout
    )
    assert events[-1]["operation"] == "waiting"
    assert events[-1]["step"]["step_id"] == "wait-for-reply"

    assert cli("runs", "golden", run_id, "--out", "golden.jsonl", "--unsigned").code == 0
    verified = cli("golden", "verify", "golden.jsonl", "--unsigned")
    assert verified.code == 0, verified.stderr
    assert verified.stdout.startswith("verified: ")
    lines = (tmp_path / "golden.jsonl").read_text(encoding="utf-8").splitlines()
    events = [n for n, line in enumerate(lines) if json.loads(line)["type"] == "event"]
    second = json.loads(lines[events[1]])
    second["commands"] = []
    lines[events[1]] = json.dumps(second)
    (tmp_path / "tampered.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    refused = cli("golden", "verify", "tampered.jsonl", "--unsigned")
    assert refused.code == 1
    assert refused.stderr.startswith(
        f"tampered.jsonl:{events[1] + 1}: event 2 (task_succeeded): replay gave ["
    )


def test_render_in_the_aos_shape_and_refuse_unknown_formats(cli: Cli, aos_dir: Path) -> None:
    assert cli("import", aos_dir / "workflow_multi_skill.json", "-o", "plan.yaml").code == 0
    started = cli("run", "plan.yaml", "--pack-path", STUBS, "-q", "--json")
    assert started.code == 0, started.stderr
    run_id = json.loads(started.stdout)["id"]
    shown_text = cli("runs", "render", run_id, "--format", "aos").stdout
    shown = json.loads(shown_text)
    assert shown["status"] == "ok"
    assert [s["step_id"] for s in shown["steps"]] == ["s1", "s2", "s3"]
    assert cli("runs", "show", run_id, "--format", "aos").stdout == shown_text
    for command in ("render", "show"):
        wrong = cli("runs", command, run_id, "--format", "yaml")
        assert wrong.code == 2
        assert "unknown format 'yaml'" in wrong.stderr
    assert cli("runs", "render", "r-nope", "--format", "aos").code == 2
