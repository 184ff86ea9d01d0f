"""Secrets in an embedded run: the action gets the value, nothing stored or shown holds it.

The ``sectest`` pack's ``check`` action compares what it received with SHA-256 digests
given as plain parameters, and returns only whether each matched. Around it, the test
reads what a user (run document, events) and someone holding the database file (every
row, the SQLite file and its WAL byte for byte) would see: references and ``***``, never
the value.
"""

from __future__ import annotations

import hashlib
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from treadle.common.loader import load_packs
from treadle.common.secret_refs import MARKER
from treadle.scheduler.store.models import attempts, keystore, outbox, run_events, run_secrets, runs

PASSWORD = "pw-Zq8vN3xLr7Tt"
TOKEN = "tok-Hk2mW9pQs4Yb"
URL = f"postgresql://app:{PASSWORD}@db:5432/app"

PACK = {
    "pack.yaml": "ref: sectest\nversion: '1.0.0'\n",
    "actions/check.yaml": """
        name: check
        runner_type: python
        entry_point: actions.py:check
        parameters:
          password: {type: string, required: true}
          url: {type: string, required: true}
          token: {type: string, required: true}
          expected: {type: object, required: true}
    """,
    "actions/leak.yaml": """
        name: leak
        runner_type: python
        entry_point: actions.py:leak
        parameters:
          text: {type: string, required: true}
          fail: {type: boolean, default: false}
    """,
    "actions/actions.py": """
        import hashlib


        def _digest(text):
            return hashlib.sha256(text.encode()).hexdigest()


        def check(password, url, token, expected):
            got = {"password": password, "url": url, "token": token}
            return {name: _digest(value) == expected[name] for name, value in got.items()}


        def leak(text, fail=False):
            if fail:
                raise ConnectionError(f"cannot connect to {text}")
            return {"said": f"I was given {text}"}
    """,
}

FLOW = """\
ref: sectest.flow
parameters:
  api_token: {type: string, secret: true, required: true}
  expected: {type: object, required: true}
tasks:
  - name: check
    action: sectest.check
    input:
      password: "{{ kv.get_secret('db.password') }}"
      url: "postgresql://app:{{ kv.get_secret('db.password') }}@db:5432/app"
      token: "{{ parameters.api_token }}"
      expected: "{{ parameters.expected }}"
    next:
      - when: "{{ succeeded() }}"
        publish:
          - conn: "postgresql://app:{{ kv.get_secret('db.password') }}@db/app"
        do: [leak, fail]
  - name: leak
    action: sectest.leak
    input: {text: "{{ parameters.api_token }}"}
  - name: fail
    action: sectest.leak
    input: {text: "postgresql://app:{{ keystore['db.password'] }}@db", fail: true}
output_map:
  checks: "{{ task.check.result }}"
  leaked: "{{ task.leak.result }}"
  token: "{{ parameters.api_token }}"
"""


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


EXPECTED = {"password": _sha(PASSWORD), "url": _sha(URL), "token": _sha(TOKEN)}


@pytest.fixture
def sectest(harness: Any, tmp_path: Path) -> Any:
    root = tmp_path / "packs"
    for name, text in PACK.items():
        path = root / "sectest" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    loaded = load_packs([root])
    assert [str(issue) for issue in loaded.issues] == []
    harness.catalog.actions.update(loaded.actions)
    return harness


def _database_bytes(database_url: str) -> bytes:
    path = Path(database_url.removeprefix("sqlite:///"))
    found = [p for p in (path, path.with_name(path.name + "-wal")) if p.exists()]
    assert path in found
    return b"".join(p.read_bytes() for p in found)


def _all_rows(runner: Any, table: Any) -> list[dict[str, Any]]:
    with runner.store.unit_of_work() as uow:
        return [dict(row) for row in uow.connection.execute(select(table)).mappings()]


def test_the_action_gets_the_values_and_nothing_stored_or_shown_holds_them(sectest: Any) -> None:
    harness = sectest
    spec = harness.workflow(FLOW)
    runner = harness.runner()
    with runner.store.unit_of_work() as uow:
        uow.kv_set("db.password", PASSWORD, secret=True, at=datetime.now(UTC))
    run_id, followed = harness.run(runner, spec, {"api_token": TOKEN, "expected": EXPECTED})

    state = followed.state
    assert state.status == "failed"  # the 'fail' task, on purpose
    document = harness.document(runner, run_id)
    check = harness.task(document, "check")
    assert check["result"] == {"password": True, "url": True, "token": True}
    # results and errors come back with the values blanked out by the worker
    assert harness.task(document, "leak")["result"] == {"said": "I was given ***"}
    error = harness.task(document, "fail")["error"]
    assert error["message"] == "cannot connect to postgresql://app:***@db"
    assert document["parameters"]["api_token"] == "***"

    # the run holds references: in its context, its variables and the event log
    context = state.context
    assert context.parameters["api_token"].startswith(MARKER)
    assert context.keystore["db.password"].startswith(MARKER)
    assert state.vars["conn"] == f"postgresql://app:{context.keystore['db.password']}@db/app"
    events = repr(harness.events(runner, run_id))
    assert MARKER in events

    # every row of the run, as stored: references, ciphertexts, never a value
    rows = {table.name: _all_rows(runner, table) for table in (runs, run_events, attempts)}
    rows["outbox"] = _all_rows(runner, outbox)
    rows["run_secrets"] = _all_rows(runner, run_secrets)
    rows["keystore"] = _all_rows(runner, keystore)
    dispatched = [r["payload"] for r in rows["outbox"] if r["kind"] == "dispatch_task"]
    assert len(dispatched) == 3
    assert all(MARKER in repr(p["dispatch"]["input"]) for p in dispatched)
    assert all("secrets" not in p["dispatch"] for p in dispatched)  # ciphertexts travel only
    assert [(r["run_id"], r["name"]) for r in rows["run_secrets"]] == [(run_id, "api_token")]
    for text in (PASSWORD, TOKEN):
        assert text not in repr(rows)
        assert text not in repr(document)
        assert text not in events

    # and byte for byte: the database file and its write-ahead log
    for text in (PASSWORD, TOKEN):
        assert text.encode() not in _database_bytes(harness.database_url)
    runner.close()
    for text in (PASSWORD, TOKEN):
        assert text.encode() not in _database_bytes(harness.database_url)


def test_a_child_run_gets_its_parents_secrets_by_reference(sectest: Any) -> None:
    harness = sectest
    harness.workflow(FLOW.replace("ref: sectest.flow", "ref: sectest.child"))
    parent = harness.workflow(
        """\
        ref: sectest.parent
        parameters:
          api_token: {type: string, secret: true, required: true}
          expected: {type: object, required: true}
        tasks:
          - name: nested
            action: sectest.child
            input:
              api_token: "{{ parameters.api_token }}"
              expected: "{{ parameters.expected }}"
        """
    )
    runner = harness.runner()
    with runner.store.unit_of_work() as uow:
        uow.kv_set("db.password", PASSWORD, secret=True, at=datetime.now(UTC))
    run_id, _ = harness.run(runner, parent, {"api_token": TOKEN, "expected": EXPECTED})
    with runner.store.unit_of_work() as uow:
        [child_id] = uow.child_runs(run_id)
    child = harness.document(runner, child_id)
    assert harness.task(child, "check")["result"] == {"password": True, "url": True, "token": True}
    assert child["parameters"]["api_token"] == "***"
    secret_rows = _all_rows(runner, run_secrets)
    assert [r["run_id"] for r in secret_rows] == [run_id]  # the child refers to the parent's
    assert TOKEN.encode() not in _database_bytes(harness.database_url)


def test_text_imitating_a_reference_gets_no_secret(sectest: Any) -> None:
    """A plain parameter spelled like a reference (here, of the keystore secret) is not
    this run's reference: the task fails instead of receiving the value."""
    harness = sectest
    spec = harness.workflow(
        """\
        ref: sectest.imitation
        parameters:
          text: {type: string}
        tasks:
          - name: leak
            action: sectest.leak
            input: {text: "{{ parameters.text }}"}
        """
    )
    runner = harness.runner()
    with runner.store.unit_of_work() as uow:
        uow.kv_set("db.password", PASSWORD, secret=True, at=datetime.now(UTC))
    forged = f"{MARKER}{'0' * 16}:kv:db.password\u27e7"
    run_id, followed = harness.run(runner, spec, {"text": forged})
    assert followed.state.status == "failed"
    error = harness.task(harness.document(runner, run_id), "leak")["error"]
    assert error["type"] == "SecretUnavailable"
    assert "keystore secret 'db.password'" in error["message"]
    assert PASSWORD not in repr(harness.document(runner, run_id))
