"""Golden records: the information of ``golden_trace.json``, signed, replayed, compared.

A record is written from a run the real embedded runner ran (nothing mocked); replaying
its events through ``decide`` must give back every line of it, and its signature must
fail on any edit. The tamper tests edit every field of every kind of line, each digest,
the order of the lines, and the lines themselves: the signature catches each, and the
replay catches each field that is not the record's own input.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from treadle.common.catalog import Catalog
from treadle.common.dialects import import_aos, import_workflows_v1, step_seed
from treadle.common.loader import load_workflow_text
from treadle.common.spec import WorkflowSpec
from treadle.scheduler.core.commands import DispatchTask, OpenInquiry
from treadle.scheduler.core.namespaces import iso
from treadle.scheduler.service.golden import (
    GoldenFormatError,
    GoldenKeys,
    SignatureResult,
    compare_records,
    golden_bytes,
    golden_lines,
    read_golden,
    replay_record,
)
from treadle.scheduler.service.renderings import StoredRun
from treadle.scheduler.service.starting import RunStarter
from treadle.scheduler.store.codec import decode_datetime

from .conftest import Driver, read_json

KEY = "golden-test-key-0123456789"
FLOW = """\
ref: gold.flow
parameters:
  a: {type: number, default: 2}
vars:
  total: null
tasks:
  - name: add
    action: examples.add
    input: {a: "{{ parameters.a }}", b: 3}
    next:
      - when: "{{ succeeded() }}"
        publish:
          - total: "{{ task.add.result.sum }}"
        do: [each]
  - name: each
    action: core.echo
    with_items: "{{ [workflow.total, workflow.total * 2] }}"
    input: {message: "item {{ item }}"}
output_map:
  total: "{{ workflow.total }}"
  said: "{{ task.each.result }}"
"""


@pytest.fixture
def trace(aos_dir: Path) -> dict[str, Any]:
    found: dict[str, Any] = read_json(aos_dir / "golden_trace.json")
    return found


@pytest.fixture
def trace_run(driver: Driver, aos_dir: Path) -> StoredRun:
    path = aos_dir / "golden_trace.json"
    spec = import_aos(path.read_text(encoding="utf-8"), str(path))
    return driver.stored(driver.start(spec))


def _record(run: StoredRun) -> list[dict[str, Any]]:
    return golden_lines(run)


def _kind(lines: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [line for line in lines if line["type"] == kind]


def test_the_golden_record_has_the_information_of_the_golden_trace(
    trace_run: StoredRun, trace: dict[str, Any]
) -> None:
    lines = _record(trace_run)
    [start], [end] = _kind(lines, "run_start"), _kind(lines, "run_end")
    assert [line["type"] for line in lines] == (
        ["run_start"] + ["step"] * 2 + ["event"] * len(trace_run.events) + ["run_end"]
    )
    # the run: id, seed, status, start and end
    assert start["run_id"] == trace_run.state.run_id
    assert start["spec_id"] == trace_run.state.workflow
    assert start["seed"] == trace_run.state.context.seed
    assert start["replay"] is False
    assert end["status"] == "succeeded"
    assert start["started_at"] <= end["completed_at"]
    # per step: index, step id, seed, action, params, status, output, cost, retries
    steps = _kind(lines, "step")
    assert len(steps) == len(trace["steps"])
    for mine, theirs in zip(steps, trace["steps"], strict=True):
        assert mine["index"] == theirs["step_index"]
        assert mine["action"] == f"aos.{theirs['skill_name']}"
        assert {k: v for k, v in mine["params"].items() if k != "seed"} == theirs["params"]
        assert mine["seed"] == mine["params"]["seed"] == step_seed(start["seed"], mine["step_id"])
        assert (mine["status"], mine["ok"]) == ("succeeded", theirs["status"] == "success")
        assert mine["output"] == theirs["outcome_data"]
        assert mine["retries"] == theirs["retry_count"]
        assert mine["cost_cents"] == 0
        assert mine["duration_ms"] is not None
        assert mine["started_at"] <= mine["finished_at"]


def test_replaying_the_record_gives_back_every_line(trace_run: StoredRun) -> None:
    lines = _record(trace_run)
    record = read_golden(golden_bytes(lines), "trace.jsonl")
    assert [line.data for line in record.lines] == lines
    assert replay_record(record) == []


def test_the_replayed_decisions_are_the_ones_the_store_recorded(
    driver: Driver, v1_dir: Path
) -> None:
    """A run with a branch, an inquiry and an event wait: replay against what was stored."""
    path = v1_dir / "publish_version_response.json"
    spec: WorkflowSpec = import_workflows_v1(path.read_text(encoding="utf-8"), str(path))
    run_id = driver.start(spec, {"provider": "hubspot", "snapshot": {"deal_value_usd": 90000}})
    driver.answer(run_id, {"approved": True})
    stored = driver.stored(run_id)
    with driver.runner.store.unit_of_work() as uow:
        attempts = uow.list_attempts(run_id)
        inquiries = uow.list_inquiries(run_id=run_id)
    commands = [c for decision in stored.decisions for c in decision.commands]
    dispatched = [c.dispatch for c in commands if isinstance(c, DispatchTask)]
    assert sorted((d.attempt_id, d.action_ref) for d in dispatched) == sorted(
        (a.attempt_id, a.action_ref) for a in attempts
    )
    asked = [c for c in commands if isinstance(c, OpenInquiry)]
    assert [(q.inquiry_id, q.task, q.prompt) for q in asked] == [
        (i.id, i.task, i.prompt) for i in inquiries
    ]
    assert stored.decisions[-1].state == stored.state
    record = read_golden(golden_bytes(_record(stored)), "v1.jsonl")
    assert replay_record(record) == []


def test_costs_and_seeds_of_the_steps_are_in_the_record(driver: Driver, aos_dir: Path) -> None:
    """The skills report ``cost_cents``; each step's seed follows from the run's seed."""
    path = aos_dir / "workflow_multi_skill.json"
    stored = driver.stored(driver.start(import_aos(path.read_text(encoding="utf-8"), str(path))))
    lines = _record(stored)
    seed = lines[0]["seed"]
    steps = _kind(lines, "step")
    assert [(s["step_id"], s["cost_cents"]) for s in steps] == [("s1", 0.1), ("s2", 0), ("s3", 0.5)]
    assert all(s["seed"] == step_seed(seed, s["step_id"]) for s in steps)
    assert steps[1]["params"]["data"] == {
        "id": 1,
        "email": "jane.doe@example.com",
        "name": "Jane Doe",
    }  # s1's body, as the reference {{s1.body}} gave it


# -- signing and tampering ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def flow_record(tmp_path_factory: pytest.TempPathFactory, catalog: Catalog) -> Iterator[bytes]:
    """The record of one run of FLOW (a publish and a with_items task), as file bytes."""
    from treadle.common.settings import Settings
    from treadle.embedded import EmbeddedRunner
    from treadle.scheduler.service.renderings import load_stored_run

    url = f"sqlite:///{tmp_path_factory.mktemp('golden') / 'golden.db'}"
    runner = EmbeddedRunner(Settings(database_url=url), catalog)
    try:
        driver = Driver(runner)
        run_id = driver.start(load_workflow_text(FLOW, "flow.yaml"))
        assert driver.status(run_id) == "succeeded"
        yield golden_bytes(golden_lines(load_stored_run(runner.store, run_id, runner.definitions)))
    finally:
        runner.close()


def _fields() -> list[tuple[str, str]]:
    """Every (line kind, field) of a record."""
    kinds = {
        "run_start": ["type", "schema_version", "run_id", "spec_id", "definition_version",
                      "dialect", "seed", "replay", "parameters", "created_at", "started_at",
                      "definition", "definition_digest"],
        "step": ["type", "index", "step_id", "action", "seed", "params", "status", "ok",
                 "output", "output_digest", "error", "cost_cents", "retries", "started_at",
                 "finished_at", "duration_ms"],
        "event": ["type", "seq", "at", "event", "commands"],
        "run_end": ["type", "status", "completed_at", "output", "error", "steps", "events",
                    "decisions_digest"],
    }  # fmt: skip
    return [(kind, field) for kind, names in kinds.items() for field in names]


#: The record's own input, which a replay takes as given: only the signature vouches for it.
INPUTS = {("run_start", "definition_version"), ("run_start", "created_at"), ("event", "seq")}


def test_the_tamper_tests_cover_every_field_of_every_line(flow_record: bytes) -> None:
    record = read_golden(flow_record, "flow.jsonl")
    written = {(line.kind, field) for line in record.lines for field in line.data}
    assert written == set(_fields())


def _edited(value: Any) -> Any:
    """``value`` changed the way a tamperer would: one leaf, keeping the shape."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, str):
        try:
            return iso(decode_datetime(value) + timedelta(seconds=1))
        except ValueError:
            return value + "x"
    if isinstance(value, dict) and value:
        key = sorted(value)[0]
        return {**value, key: _edited(value[key])}
    if isinstance(value, list) and value:
        return [_edited(value[0]), *value[1:]]
    if value is None:
        return "edited"
    return [*value, "edited"] if isinstance(value, list) else {"edited": True}


def _with_field_edited(data: bytes, kind: str, field: str) -> bytes:
    lines = data.decode("utf-8").splitlines()
    for position, text in enumerate(lines):
        line = json.loads(text)
        wanted = kind != "event" or line.get("event", {}).get("kind") == "task_succeeded"
        if line["type"] == kind and wanted:
            line[field] = _edited(line[field])
            lines[position] = json.dumps(line, separators=(",", ":"), ensure_ascii=False)
            return ("\n".join(lines) + "\n").encode("utf-8")
    raise AssertionError(f"no {kind} line")


def _replay_finds_something(data: bytes) -> bool:
    try:
        return bool(replay_record(read_golden(data, "edited.jsonl")))
    except GoldenFormatError:
        return True


@pytest.mark.parametrize(("kind", "field"), _fields(), ids=str)
def test_editing_any_field_breaks_the_signature_and_the_replay_notices(
    flow_record: bytes, kind: str, field: str
) -> None:
    keys = GoldenKeys.parse(KEY)
    signature = keys.sign(flow_record)
    edited = _with_field_edited(flow_record, kind, field)
    assert edited != flow_record
    assert keys.check(edited, signature).result is SignatureResult.MISMATCH
    assert _replay_finds_something(edited) is ((kind, field) not in INPUTS)


def test_a_step_output_edited_with_its_digest_recomputed_is_still_caught(
    flow_record: bytes,
) -> None:
    """The attack the unkeyed digest let through: change an output, recompute the digest."""
    from treadle.scheduler.service.golden import digest

    lines = [json.loads(text) for text in flow_record.decode("utf-8").splitlines()]
    step = next(line for line in lines if line["type"] == "step" and line["step_id"] == "add")
    step["output"] = {"sum": 500}
    step["output_digest"] = digest(step["output"])
    edited = golden_bytes(lines)
    keys = GoldenKeys.parse(KEY)
    assert not keys.check(edited, keys.sign(flow_record)).ok
    problems = replay_record(read_golden(edited, "edited.jsonl"))
    assert problems == [
        "edited.jsonl:2: step 0 (add) field 'output': the record has {\"sum\":500}, "
        'the replay gives {"sum":5}',
        "edited.jsonl:2: step 0 (add) field 'output_digest': the record has "
        f'"{digest({"sum": 500})}", the replay gives "{digest({"sum": 5})}"',
    ]


def _reordered(data: bytes) -> bytes:
    lines = data.decode("utf-8").splitlines(keepends=True)
    events = [i for i, line in enumerate(lines) if '"type":"event"' in line]
    lines[events[1]], lines[events[2]] = lines[events[2]], lines[events[1]]
    return "".join(lines).encode("utf-8")


def _dropped(data: bytes) -> bytes:
    lines = data.decode("utf-8").splitlines(keepends=True)
    events = [i for i, line in enumerate(lines) if '"type":"event"' in line]
    del lines[events[-1]]
    return "".join(lines).encode("utf-8")


def _appended(data: bytes) -> bytes:
    last_step = [line for line in data.decode().splitlines() if '"type":"step"' in line][-1]
    return data + (last_step + "\n").encode("utf-8")


def _step_dropped(data: bytes) -> bytes:
    lines = data.decode("utf-8").splitlines(keepends=True)
    return "".join(line for line in lines if '"step_id":"each"' not in line).encode("utf-8")


@pytest.mark.parametrize(
    "change",
    [_reordered, _dropped, _appended, _step_dropped],
    ids=["reordered", "event-dropped", "line-appended", "step-dropped"],
)
def test_reordering_dropping_or_appending_lines_fails(
    flow_record: bytes, change: Callable[[bytes], bytes]
) -> None:
    keys = GoldenKeys.parse(KEY)
    changed = change(flow_record)
    assert keys.check(changed, keys.sign(flow_record)).result is SignatureResult.MISMATCH
    assert _replay_finds_something(changed)


def test_signatures_name_their_key_and_accept_every_listed_key(flow_record: bytes) -> None:
    old = GoldenKeys.parse("old-golden-key-0123456789")
    signed_by_old = old.sign(flow_record)
    assert signed_by_old.startswith(f"hmac-sha256 {old.signing_key_id} ")
    assert "old-golden-key" not in signed_by_old
    rotated = GoldenKeys.parse(f"{KEY},old-golden-key-0123456789")
    assert rotated.check(flow_record, signed_by_old).ok
    assert (
        rotated.check(flow_record, rotated.sign(flow_record)).key_id
        == GoldenKeys.parse(KEY).signing_key_id
    )
    other = GoldenKeys.parse(KEY)
    check = other.check(flow_record, signed_by_old)
    assert (check.result, check.key_id) == (SignatureResult.UNKNOWN_KEY, old.signing_key_id)
    assert other.check(flow_record, None).result is SignatureResult.MISSING
    assert other.check(flow_record, "sha256 abc").result is SignatureResult.MALFORMED


def test_a_short_key_is_refused_without_showing_it() -> None:
    from treadle.common.errors import ConfigurationError

    with pytest.raises(ConfigurationError) as refused:
        GoldenKeys.parse("good-golden-key-0123,tiny")
    assert str(refused.value) == (
        "TREADLE_GOLDEN_KEY: key 2 has 4 characters; a golden record key needs at least 16"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "bad.jsonl: empty: a golden record starts with a run_start line"),
        ("[1]\n", "bad.jsonl:1: not a JSON object"),
        ('{"type": "step"}\n', "bad.jsonl:1: step field 'index': Field required"),
        ('{"type": "stop"}\n', "bad.jsonl:1: field 'type' is 'stop'; a line is one of "
         "run_start, step, event, run_end"),
    ],
)  # fmt: skip
def test_a_file_that_is_not_a_record_is_named_by_line_and_field(text: str, message: str) -> None:
    with pytest.raises(GoldenFormatError) as refused:
        read_golden(text.encode(), "bad.jsonl")
    assert str(refused.value) == message


def test_a_field_of_the_wrong_type_is_named(flow_record: bytes) -> None:
    edited = _with_field_edited(flow_record, "run_end", "steps").replace(
        b'"steps":3', b'"steps":"three"'
    )
    with pytest.raises(GoldenFormatError) as refused:
        read_golden(edited, "bad.jsonl")
    last = len(flow_record.splitlines())
    assert str(refused.value).startswith(f"bad.jsonl:{last}: run_end field 'steps': ")


# -- comparing ---------------------------------------------------------------------------------


@pytest.fixture
def seeded_driver(driver: Driver) -> Driver:
    """Runs started with seed 7, so two runs of one workflow differ only where they must."""
    runner = driver.runner
    runner.starter = RunStarter(runner.runs, limits=runner.settings.limits, seeds=lambda: 7)
    return driver


def test_two_runs_with_the_same_inputs_compare_equal(seeded_driver: Driver) -> None:
    spec = load_workflow_text(FLOW, "flow.yaml")
    runs = [seeded_driver.stored(seeded_driver.start(spec)) for _ in range(2)]
    first, second = (read_golden(golden_bytes(golden_lines(run)), "a") for run in runs)
    assert first.start.run_id != second.start.run_id
    assert compare_records(first, second) == []


def test_comparing_names_each_difference(seeded_driver: Driver) -> None:
    spec = load_workflow_text(FLOW, "flow.yaml")
    a_run = seeded_driver.stored(seeded_driver.start(spec))
    b_run = seeded_driver.stored(seeded_driver.start(spec, {"a": 10}))
    a = read_golden(golden_bytes(golden_lines(a_run)), "a")
    b = read_golden(golden_bytes(golden_lines(b_run)), "b")
    differences = compare_records(a, b)
    assert "run_start (a:1, b:1) parameters.a: 2 != 10" in differences
    assert "step 0 (add) (a:2, b:2) output.sum: 5 != 13" in differences
    assert "event 2 (task_succeeded) (a:5, b:5) event.result.sum: 5 != 13" in differences
    assert "run_end (a:8, b:8) output.total: 5 != 13" in differences
