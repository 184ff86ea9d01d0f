"""Golden records over HTTP, counted where Prometheus scrapes them.

A real app (``create_app``) on a real SQLite store with ``TREADLE_GOLDEN_KEY`` set. The
record verified is written from a run the embedded runner really ran. Each verdict
(``ok``, ``mismatch``, ``bad_signature``) is visible at ``GET /metrics`` with the label
values the alert rules use, bad uploads are refused in the API's error shape and counted
nowhere, and a viewer may do none of it (replays: ``test_replay_api.py``). Last, the
``treadle`` command with ``--api`` against a real ``treadle api`` process prints what it
prints without the API, and the process counts what it did.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

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
from treadle.scheduler.version_replay import Cause
from treadle.testing.cli import TreadleCli
from treadle.testing.processes import ServiceProcess, treadle_environment, wait_until_serving
from treadle.testing.redis_server import free_port

from .golden_support import (
    FLOW,
    KEY,
    ROOT,
    Bearer,
    ErrorShape,
    _causes,
    _jsonl,
    _present,
    _sign,
    _verdicts,
    _verify,
)
from .test_metrics_route import scrape


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
