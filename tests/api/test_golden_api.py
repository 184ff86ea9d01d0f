"""Golden records and replays over HTTP, counted where Prometheus scrapes them.

A real app (``create_app``) on a real SQLite store with ``TREADLE_GOLDEN_KEY`` set. The
record verified is written from a run the embedded runner really ran; the runs replayed
are started with :class:`treadle.Client` and replayed against versions published after
them. Each verdict (``ok``, ``mismatch``, ``bad_signature``) and each cause of a
divergence is visible at ``GET /metrics`` with the label values the alert rules use, bad
uploads are refused in the API's error shape and counted nowhere, and a viewer may do
none of it. Last, the ``treadle`` command with ``--api`` against a real ``treadle api``
process prints what it prints without the API, and the process counts what it did.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from treadle.api.app import create_app
from treadle.api.routes import golden as golden_route
from treadle.client import Client
from treadle.common.access import Principal, Role
from treadle.common.loader import load_workflow_text
from treadle.common.settings import Settings
from treadle.scheduler.service.access import issue
from treadle.scheduler.service.golden import (
    GoldenKeys,
    VerificationResult,
    golden_bytes,
    golden_lines,
)
from treadle.scheduler.service.renderings import load_stored_run
from treadle.scheduler.store import Store
from treadle.scheduler.version_replay import Cause, Change, Divergence, ReplayReport
from treadle.testing.cli import TreadleCli
from treadle.testing.processes import ServiceProcess, treadle_environment, wait_until_serving
from treadle.testing.redis_server import free_port

from .conftest import FakeClock
from .test_metrics_route import Samples, scrape, value

ROOT = Path(__file__).resolve().parents[2]
KEY = "api-golden-key-0123456789"
Bearer = Callable[[Role], dict[str, str]]
ErrorShape = Callable[..., dict[str, object]]

#: Run to its end by the embedded runner: the record verified.
FLOW = """\
ref: gold.flow
parameters:
  a: {type: number, default: 2}
tasks:
  - name: add
    action: examples.add
    input: {a: "{{ parameters.a }}", b: 3}
    next:
      - when: "{{ succeeded() }}"
        do: [say]
  - name: say
    action: core.echo
    input: {message: "total {{ task.add.result.sum }}"}
output_map:
  total: "{{ task.add.result.sum }}"
"""

#: Started and left running (its first task dispatched): the run replayed. ``roll`` has a
#: step seed, as the tasks of an imported AOS plan do.
DICE = """\
ref: gold.dice
tasks:
  - name: roll
    action: core.noop
    input: {message: "roll", seed: "{{ (system.seed * 7) % 1000 }}"}
    next: [{do: [done]}]
  - name: done
    action: core.noop
"""


def _jsonl(role: Role, bearer: Bearer, **extra: str) -> dict[str, str]:
    return {**bearer(role), "Content-Type": "application/jsonl", **extra}


@pytest.fixture
def golden_api(database_url: str, store: Store, clock: FakeClock) -> Iterator[TestClient]:
    settings = Settings(database_url=database_url, golden_key=KEY)
    with TestClient(create_app(settings, store=store, clock=clock)) as test_client:
        yield test_client


@pytest.fixture
def record(runner: Any, store: Store) -> bytes:
    """The golden record of a run of ``gold.flow`` that ran to its end."""
    run_id = runner.start(load_workflow_text(FLOW, "<flow>"), {})
    runner.follow(run_id)
    data = golden_bytes(golden_lines(load_stored_run(store, run_id)))
    assert b'"status":"succeeded"' in data
    return data


def _sign(data: bytes, key: str = KEY) -> str:
    return GoldenKeys.parse(key).sign(data)


def _verify(api: TestClient, bearer: Bearer, data: bytes, signature: str, **params: str) -> Any:
    headers = _jsonl(Role.OPERATOR, bearer, **{"Golden-Signature": signature.strip()})
    return api.post("/api/v1/golden/verify", content=data, headers=headers, params=params)


def _verdicts(samples: Samples) -> dict[str, float]:
    metric = "treadle_golden_verifications_total"
    return {
        result.value: value(samples, metric, result=result.value) for result in VerificationResult
    }


def _causes(samples: Samples) -> dict[str, float]:
    metric = "treadle_replay_divergences_total"
    return {cause.value: value(samples, metric, cause=cause.value) for cause in Cause}


def _present(samples: Samples) -> set[tuple[str, str]]:
    """The labelled series of the two counters the registry exports, at any value."""
    found = set()
    for name, labels in samples:
        for label, metric in (
            ("result", "treadle_golden_verifications_total"),
            ("cause", "treadle_replay_divergences_total"),
        ):
            if name == metric:
                found.add((metric, dict(labels)[label]))
    return found


# -- verifying -------------------------------------------------------------------------------


def test_each_verdict_is_answered_and_counted_under_its_result(
    golden_api: TestClient, bearer: Bearer, record: bytes
) -> None:
    before = scrape(golden_api, bearer(Role.VIEWER))
    # every label value is there at 0 before anything is verified, so that the first
    # failure is an increase for the alert rules (increase(...) > 0)
    assert _verdicts(before) == {"ok": 0, "mismatch": 0, "bad_signature": 0}
    assert _causes(before) == dict.fromkeys((cause.value for cause in Cause), 0)
    assert _present(before) == {
        *(("treadle_golden_verifications_total", r.value) for r in VerificationResult),
        *(("treadle_replay_divergences_total", c.value) for c in Cause),
    }

    ok = _verify(golden_api, bearer, record, _sign(record), name="run.jsonl")
    assert ok.status_code == 200, ok.json()
    key_id = GoldenKeys.parse(KEY).signing_key_id
    assert ok.json() == {
        "record": "run.jsonl",
        "result": "ok",
        "message": f"verified: signature ok (key {key_id}); 3 events replay to the recorded "
        "decisions; 2 steps and the run's end match",
        "differences": [],
        "signature": {"result": "ok", "key_id": key_id},
    }

    # an edit re-signed by someone holding the key: the signature holds, the replay not
    edited = record.replace(b'"output":{"sum":5}', b'"output":{"sum":6}', 1)
    assert edited != record
    mismatch = _verify(golden_api, bearer, edited, _sign(edited), name="run.jsonl")
    assert mismatch.status_code == 200
    answer = mismatch.json()
    assert answer["result"] == "mismatch"
    assert answer["message"] == (
        f"mismatch: {len(answer['differences'])} difference(s) between run.jsonl and its replay"
    )
    assert any(
        "run.jsonl:2: step 0 (add) field 'output': the record has {\"sum\":6}" in difference
        for difference in answer["differences"]
    )

    # the same edit without the key; a signature of another key; one that is not a signature
    tampered = _verify(golden_api, bearer, edited, _sign(record), name="run.jsonl")
    assert tampered.json()["message"] == (
        "bad signature: run.jsonl does not match its signature run.jsonl.sig: the record was "
        "changed after it was signed"
    )
    assert tampered.json()["differences"] == []  # nothing was replayed
    other = _verify(golden_api, bearer, record, _sign(record, "another-golden-key-987654"))
    assert other.json()["signature"]["result"] == "unknown_key"
    assert "which TREADLE_GOLDEN_KEY does not hold" in other.json()["message"]
    assert "<body>.sig" not in other.json()["message"]
    assert "the Golden-Signature header names key" in other.json()["message"]
    malformed = _verify(golden_api, bearer, record, "sha1 not-a-signature")
    assert malformed.json()["signature"] == {"result": "malformed", "key_id": None}
    for answered in (tampered, other, malformed):
        assert answered.status_code == 200
        assert answered.json()["result"] == "bad_signature"

    after = scrape(golden_api, bearer(Role.VIEWER))
    assert _verdicts(after) == {"ok": 1, "mismatch": 1, "bad_signature": 3}
    assert _causes(after) == _causes(before)  # verifying is not replaying against a version


def test_bad_uploads_are_refused_in_the_error_shape_and_counted_nowhere(
    golden_api: TestClient,
    bearer: Bearer,
    record: bytes,
    error_shape: ErrorShape,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    signature = _sign(record).strip()
    before = scrape(golden_api, bearer(Role.VIEWER))

    yaml_body = golden_api.post(
        "/api/v1/golden/verify",
        content=FLOW.encode(),
        headers={
            **bearer(Role.OPERATOR),
            "Content-Type": "application/yaml",
            "Golden-Signature": signature,
        },
    )
    assert yaml_body.status_code == 415
    error_shape(yaml_body.json(), "unsupported_media_type", "as JSON lines", "application/yaml")

    unsigned = golden_api.post(
        "/api/v1/golden/verify", content=record, headers=_jsonl(Role.OPERATOR, bearer)
    )
    assert unsigned.status_code == 422
    error_shape(unsigned.json(), "validation_error", "header parameter 'Golden-Signature'")

    # signed, but not a golden record: named by line and field
    not_a_record = b'{"type": "run_start"}\n'
    refused = _verify(golden_api, bearer, not_a_record, _sign(not_a_record), name="x.jsonl")
    assert refused.status_code == 422
    error = error_shape(refused.json(), "invalid_parameters")
    assert error["message"] == (
        "invalid golden record: x.jsonl:1: run_start field 'schema_version': Field required"
    )
    garbage = b"run_start,step,event\n"
    refused = _verify(golden_api, bearer, garbage, _sign(garbage))
    assert refused.status_code == 422
    error_shape(refused.json(), "invalid_parameters", "<body>:1: not a JSON object")

    monkeypatch.setattr(golden_route, "MAX_RECORD_BYTES", 100)
    too_large = _verify(golden_api, bearer, record, signature)
    assert too_large.status_code == 413
    error_shape(too_large.json(), "request_too_large", "at most 100 bytes")

    after = scrape(golden_api, bearer(Role.VIEWER))
    assert _verdicts(after) == _verdicts(before)
    assert _causes(after) == _causes(before)


def test_without_a_key_the_api_refuses_to_verify(
    api: TestClient, bearer: Bearer, record: bytes, error_shape: ErrorShape
) -> None:
    refused = _verify(api, bearer, record, _sign(record))
    assert refused.status_code == 409
    error_shape(refused.json(), "conflict", "TREADLE_GOLDEN_KEY is not set where the API runs")
    assert _verdicts(scrape(api, bearer(Role.VIEWER))) == {
        "ok": 0,
        "mismatch": 0,
        "bad_signature": 0,
    }


# -- replaying -------------------------------------------------------------------------------


@pytest.fixture
def dice_run(client: Client) -> str:
    """A run of ``gold.dice`` v1, its ``roll`` dispatched (seed 42)."""
    client.register(load_workflow_text(DICE, "<dice>"))
    return client.start("gold.dice", seed=42)


def _publish(client: Client, text: str) -> None:
    client.register(load_workflow_text(text, "<dice>"))


def _replay(
    api: TestClient, bearer: Bearer, run_id: str, role: Role = Role.OPERATOR, **params: Any
) -> Any:
    return api.post(f"/api/v1/runs/{run_id}/replay", params=params, headers=bearer(role))


def test_a_run_replays_against_versions_and_each_cause_is_counted(
    golden_api: TestClient, bearer: Bearer, client: Client, dice_run: str
) -> None:
    same = _replay(golden_api, bearer, dice_run, workflow="gold.dice", version=1)
    assert same.status_code == 200, same.json()
    assert same.json() == {
        "run": dice_run,
        "recorded": "gold.dice v1",
        "against": "gold.dice v1",
        "identical": True,
        "divergences": [],
        "causes": [],
        "steps": {"recorded": 1, "new": 1},
    }
    # v2: another message and another step seed for roll
    _publish(
        client,
        DICE.replace('"roll", seed: "{{ (system.seed * 7)', '"dice", seed: "{{ (system.seed * 11)'),
    )
    changed = _replay(golden_api, bearer, dice_run, workflow="gold.dice")
    assert changed.status_code == 200
    answer = changed.json()
    assert (answer["against"], answer["identical"], answer["causes"]) == (
        "gold.dice v2",
        False,
        ["input", "seed"],
    )
    assert [(d["step"], d["change"], d["what"], d["cause"]) for d in answer["divergences"]] == [
        ("roll", "input", "message (attempt 1)", "input"),
        ("roll", "input", "seed (attempt 1)", "seed"),
    ]
    assert answer["divergences"][1]["recorded"] == (42 * 7) % 1000
    assert answer["divergences"][1]["message"] == (
        f"roll: input seed (attempt 1): recorded {(42 * 7) % 1000}, new {(42 * 11) % 1000}"
    )
    # v3: roll renamed: the recorded step is removed, the new one added
    _publish(client, DICE.replace("name: roll", "name: throw"))
    renamed = _replay(golden_api, bearer, dice_run, workflow="gold.dice", version=3).json()
    assert renamed["causes"] == ["added", "removed"]
    # v4: roll calls another action
    _publish(client, DICE.replace("action: core.noop\n    input", "action: core.echo\n    input"))
    other = _replay(golden_api, bearer, dice_run, workflow="gold.dice", version=4).json()
    assert other["causes"] == ["action"]

    causes = _causes(scrape(golden_api, bearer(Role.VIEWER)))
    counted = {"input": 1, "seed": 1, "added": 1, "removed": 1, "action": 1}
    assert causes == {**dict.fromkeys(causes, 0), **counted}


def test_each_change_has_its_cause_and_a_replay_counts_each_cause_once() -> None:
    """The metric's ``cause`` is the change (``new call`` as ``new_call``), with an input
    divergence in a ``seed`` field apart; a replay's causes are distinct, in order."""
    causes = {Divergence("s", change, "x", 1, 2).cause.value for change in Change}
    assert causes == {cause.value for cause in Cause} - {"seed"}
    seed = Divergence("s", Change.INPUT, "seed (attempt 1)", 1, 2, "seed")
    nested = Divergence("s", Change.INPUT, "seed.n (attempt 1)", 1, 2, "seed.n")
    other = Divergence("s", Change.INPUT, "seeds (attempt 1)", 1, 2, "seeds")
    assert (seed.cause, nested.cause, other.cause) == (Cause.SEED, Cause.SEED, Cause.INPUT)
    ended = Divergence("run", Change.RUN, "status", 1, 2)
    report = ReplayReport(2, 2, (other, seed, other, ended))
    assert report.causes == (Cause.INPUT, Cause.SEED, Cause.RUN)


def test_a_golden_record_replays_against_a_version(
    golden_api: TestClient, bearer: Bearer, client: Client, store: Store, dice_run: str
) -> None:
    data = golden_bytes(golden_lines(load_stored_run(store, dice_run)))
    _publish(client, DICE.replace("(system.seed * 7)", "(system.seed * 9)"))
    replayed = golden_api.post(
        "/api/v1/golden/replay",
        content=data,
        params={"workflow": "gold.dice", "name": "dice.jsonl"},
        headers=_jsonl(Role.OPERATOR, bearer),
    )
    assert replayed.status_code == 200, replayed.json()
    assert replayed.json()["causes"] == ["seed"]
    assert replayed.json()["recorded"] == "gold.dice v1"
    assert _causes(scrape(golden_api, bearer(Role.VIEWER)))["seed"] == 1

    cut = b"\n".join(data.splitlines()[:-1])  # no run_end: the record is cut short
    refused = golden_api.post(
        "/api/v1/golden/replay",
        content=cut,
        params={"workflow": "gold.dice", "name": "dice.jsonl"},
        headers=_jsonl(Role.OPERATOR, bearer),
    )
    assert refused.status_code == 422
    assert "dice.jsonl:" in refused.json()["error"]["message"]
    assert "the record is cut short" in refused.json()["error"]["message"]


def test_unknown_runs_workflows_and_versions_are_404_and_counted_nowhere(
    golden_api: TestClient,
    bearer: Bearer,
    store: Store,
    clock: FakeClock,
    dice_run: str,
    error_shape: ErrorShape,
) -> None:
    before = _causes(scrape(golden_api, bearer(Role.VIEWER)))
    unknown_run = _replay(golden_api, bearer, "r-nope", workflow="gold.dice")
    assert unknown_run.status_code == 404
    error_shape(unknown_run.json(), "not_found", "r-nope")
    unknown_flow = _replay(golden_api, bearer, dice_run, workflow="gold.nope")
    assert unknown_flow.status_code == 404
    error_shape(unknown_flow.json(), "not_found", "gold.nope")
    unknown_version = _replay(golden_api, bearer, dice_run, workflow="gold.dice", version=9)
    assert unknown_version.status_code == 404
    error_shape(unknown_version.json(), "not_found", "no version 9")
    no_version = _replay(golden_api, bearer, dice_run, workflow="gold.dice", version=0)
    assert no_version.status_code == 422
    error_shape(no_version.json(), "validation_error", "query parameter 'version'")
    no_workflow = _replay(golden_api, bearer, dice_run)
    assert no_workflow.status_code == 422
    error_shape(no_workflow.json(), "validation_error", "query parameter 'workflow'")

    # another workspace's token sees no such run
    with store.unit_of_work() as uow:
        elsewhere = issue(
            uow,
            name="team-b-ops",
            role=Role.OPERATOR,
            workspace="team-b",
            expires_at=None,
            created_by=Principal("test-setup", Role.ADMIN, "team-b"),
            now=clock(),
        ).plaintext
    hidden = golden_api.post(
        f"/api/v1/runs/{dice_run}/replay",
        params={"workflow": "gold.dice"},
        headers={"Authorization": f"Bearer {elsewhere}"},
    )
    assert hidden.status_code == 404
    error_shape(hidden.json(), "not_found", f"run {dice_run} not found")
    assert _causes(scrape(golden_api, bearer(Role.VIEWER))) == before


def test_a_viewer_may_neither_verify_nor_replay(
    golden_api: TestClient, bearer: Bearer, record: bytes, dice_run: str, error_shape: ErrorShape
) -> None:
    signature = _sign(record).strip()
    for path, params in (
        ("/api/v1/golden/verify", {}),
        ("/api/v1/golden/replay", {"workflow": "gold.flow"}),
        (f"/api/v1/runs/{dice_run}/replay", {"workflow": "gold.dice"}),
    ):
        refused = golden_api.post(
            path,
            content=record,
            params=params,
            headers=_jsonl(Role.VIEWER, bearer, **{"Golden-Signature": signature}),
        )
        assert refused.status_code == 403, path
        error_shape(refused.json(), "forbidden")
        anonymous = golden_api.post(path, content=record, params=params)
        assert anonymous.status_code == 401, path
    assert _verdicts(scrape(golden_api, bearer(Role.VIEWER)))["ok"] == 0


# -- the alert rules -------------------------------------------------------------------------


def test_the_alert_rules_and_their_tests_use_label_values_the_api_counts() -> None:
    """Every ``result``/``cause`` value the rules and their promtool tests name is one the
    API counts: a rule on a value that never happens would never fire."""
    rules = (ROOT / "deploy" / "prometheus" / "treadle-alerts.yml").read_text(encoding="utf-8")
    tests = (ROOT / "tests" / "deploy" / "prometheus" / "treadle-alerts.test.yml").read_text(
        encoding="utf-8"
    )
    counted = {
        "result": {result.value for result in VerificationResult},
        "cause": {cause.value for cause in Cause},
    }
    for metric, label in (
        ("treadle_golden_verifications_total", "result"),
        ("treadle_replay_divergences_total", "cause"),
    ):
        named = set()
        for text in (rules, tests):
            for selector in re.findall(rf"{metric}\{{([^}}]*)\}}", text):
                for found in re.findall(rf'{label}\s*(?:=~|!=|=)\s*"([^"]*)"', selector):
                    named.update(found.split("|"))
        assert named, metric
        assert named <= counted[label], (metric, named - counted[label])
    # the determinism group's rules are loaded by Prometheus as they are written
    group = next(
        group
        for group in yaml.safe_load(rules)["groups"]
        if group["name"] == "treadle_workflow_determinism"
    )
    assert {rule["alert"] for rule in group["rules"]} == {
        "TreadleReplayFailures",
        "TreadleGoldenMismatch",
        "TreadleSeedDrift",
    }


# -- the command through a real treadle api ---------------------------------------------------


@pytest.mark.slow
def test_the_commands_through_the_api_print_the_same_and_are_counted(
    tmp_path: Path, shipped_catalog: Any
) -> None:
    from treadle.embedded import EmbeddedRunner

    url = f"sqlite:///{tmp_path / 'treadle.db'}"
    store = Store.open(url)
    try:
        runner = EmbeddedRunner(Settings(database_url=url), shipped_catalog)
        try:
            run_id = runner.start(load_workflow_text(FLOW, "<flow>"), {})
            runner.follow(run_id)
        finally:
            runner.close()
        data = golden_bytes(golden_lines(load_stored_run(store, run_id)))
        with Client(url) as client:
            client.register(load_workflow_text(FLOW.replace("total {{", "sum {{"), "<v2>"))
        with store.unit_of_work() as uow:
            creator = Principal("test-setup", Role.ADMIN, "default")
            tokens = {
                role: issue(
                    uow,
                    name=f"{role.value}-cli",
                    role=role,
                    workspace="default",
                    expires_at=None,
                    created_by=creator,
                    now=datetime.now(UTC),
                ).plaintext
                for role in (Role.OPERATOR, Role.VIEWER)
            }
    finally:
        store.close()

    folder = tmp_path / "ci"
    folder.mkdir()
    (folder / "g.jsonl").write_bytes(data)
    (folder / "g.jsonl.sig").write_text(_sign(data), encoding="ascii")
    (folder / "t.jsonl").write_bytes(data.replace(b'{"sum":5}', b'{"sum":6}', 1))
    (folder / "t.jsonl.sig").write_text(_sign(data), encoding="ascii")  # not its bytes'
    edited = data.replace(b'{"sum":5}', b'{"sum":6}', 1)
    (folder / "m.jsonl").write_bytes(edited)
    (folder / "m.jsonl.sig").write_text(_sign(edited), encoding="ascii")  # re-signed
    (folder / "n.jsonl").write_bytes(data)  # no signature at all

    # the same folder: with the key and the database, and with a token and the API only
    local = TreadleCli(
        folder, treadle_environment(golden_key=KEY, database_url=url), in_process=True
    )
    ci = TreadleCli(folder, treadle_environment(api_token=tokens[Role.OPERATOR]), in_process=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = ServiceProcess(
        "api",
        ["api", "--port", str(port), "--database", url, "--no-embedded"],
        treadle_environment(golden_key=KEY, log_level="INFO"),
        tmp_path / "api.log",
    )
    try:
        wait_until_serving(process, base)
        for args, code in (
            (("golden", "verify", "g.jsonl"), 0),
            (("golden", "verify", "t.jsonl"), 1),
            (("golden", "verify", "m.jsonl"), 1),
            (("golden", "verify", "n.jsonl"), 1),
            (("replay", run_id, "--against", "gold.flow@1"), 0),
            (("replay", "g.jsonl", "--against", "gold.flow"), 1),
            (("replay", "g.jsonl", "--against", "gold.flow", "--json"), 1),
        ):
            here = local(*args, code=code)
            there = ci(*args, "--api", base, code=code)
            assert (there.stdout, there.stderr) == (here.stdout, here.stderr), args
        changed = ci("replay", "g.jsonl", "--against", "gold.flow", "--json", "--api", base)
        assert changed.json()["causes"] == ["input"]

        # what only the API path says: what it cannot do, and who may not
        no_file = ci("replay", run_id, "--against", "g.jsonl", "--api", base, code=2)
        assert "through the API a replay is against a stored version" in no_file.stderr
        unsigned = ci("golden", "verify", "g.jsonl", "--unsigned", "--api", base, code=2)
        assert "--unsigned does not go through the API" in unsigned.stderr
        watcher = TreadleCli(
            folder, treadle_environment(api_token=tokens[Role.VIEWER]), in_process=True
        )
        refused = watcher("golden", "verify", "g.jsonl", "--api", base, code=2)
        assert "operator" in refused.stderr

        metrics = httpx.get(
            f"{base}/metrics", headers={"Authorization": f"Bearer {tokens[Role.VIEWER]}"}
        )
        samples = {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(metrics.text)
            for sample in family.samples
        }
    finally:
        process.close()
    # n.jsonl's missing signature never reached the API
    assert _verdicts(samples) == {"ok": 1, "mismatch": 1, "bad_signature": 1}
    assert {cause: n for cause, n in _causes(samples).items() if n} == {"input": 3}
