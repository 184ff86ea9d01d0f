"""``treadle runs golden --out``, ``treadle golden verify|compare`` and ``treadle replay``,
as a user runs them on a run the embedded runner ran.

Signing needs ``TREADLE_GOLDEN_KEY`` (refused without it, nothing written); verifying
checks the signature before replaying and names what is wrong; a record never holds a
secret's value; replaying a run against an edited workflow file or a stored version names
each difference.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from treadle.testing.cli import TreadleCli

from .conftest import Cli

KEY = "cli-golden-key-0123456789"
FLOW = """\
ref: gold.flow
parameters:
  a: {type: number, default: 2}
  api_token: {type: string, secret: true, default: "tok-Hk2mW9pQs4Yb"}
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
        do: [say]
  - name: say
    action: core.echo
    input:
      message: "total {{ workflow.total }} with {{ parameters.api_token }} and {{ kv.pw }}"
output_map:
  total: "{{ workflow.total }}"
"""
PASSWORD = "pw-Zq8vN3xLr7Tt"


def _signing(treadle: Cli, key: str = KEY) -> TreadleCli:
    return TreadleCli(treadle.workdir, {**treadle.env, "TREADLE_GOLDEN_KEY": key}, in_process=True)


@pytest.fixture
def run_id(treadle: Cli) -> str:
    treadle.write("flow.yaml", FLOW)
    treadle("kv", "set", "pw", PASSWORD, "--secret", code=0)
    started = treadle("run", "flow.yaml", "-q", "--json", code=0)
    return str(json.loads(started.stdout)["id"])


def test_a_record_is_signed_verified_and_holds_no_secret(treadle: Cli, run_id: str) -> None:
    refused = treadle("runs", "golden", run_id, "--out", "g.jsonl", code=2)
    assert refused.stderr == (
        "error: TREADLE_GOLDEN_KEY is not set: a golden record is signed with it (set it, or "
        "pass --unsigned to write the record without a signature)\n"
    )
    assert not (treadle.workdir / "g.jsonl").exists()

    signing = _signing(treadle)
    wrote = signing("runs", "golden", run_id, "--out", "g.jsonl", code=0)
    record = (treadle.workdir / "g.jsonl").read_bytes()
    signature = (treadle.workdir / "g.jsonl.sig").read_text(encoding="ascii")
    assert wrote.stderr.startswith(f"wrote g.jsonl ({len(record.splitlines())} lines) and ")
    assert signature.startswith("hmac-sha256 ")
    assert KEY not in signature
    assert b"tok-Hk2mW9pQs4Yb" not in record
    assert PASSWORD.encode() not in record
    assert "\u27e6secret:".encode() in record  # the references, never the values

    verified = signing("golden", "verify", "g.jsonl", code=0)
    assert verified.stdout == (
        f"verified: signature ok (key {signature.split()[1]}); 3 events replay to the "
        "recorded decisions; 2 steps and the run's end match\n"
    )
    no_key = treadle("golden", "verify", "g.jsonl", code=2)
    assert no_key.stderr.startswith("error: TREADLE_GOLDEN_KEY is not set: the signature of ")


def test_verifying_names_a_tampered_record_a_missing_signature_and_another_key(
    treadle: Cli, run_id: str
) -> None:
    signing = _signing(treadle)
    signing("runs", "golden", run_id, "--out", "g.jsonl", code=0)
    path = treadle.workdir / "g.jsonl"
    path.write_bytes(path.read_bytes().replace(b'{"sum":5}', b'{"sum":6}', 1))
    tampered = signing("golden", "verify", "g.jsonl", code=1)
    assert tampered.stderr == (
        "bad signature: g.jsonl does not match its signature g.jsonl.sig: the record was "
        "changed after it was signed\n"
    )
    assert tampered.stdout == ""  # nothing was replayed
    replayed = signing("golden", "verify", "g.jsonl", "--unsigned", code=1)
    assert "g.jsonl:2: step 0 (add) field 'output': the record has {\"sum\":6}, the replay " in (
        replayed.stderr
    )
    assert replayed.stdout.startswith("mismatch: ")

    other = _signing(treadle, "another-golden-key-987654")
    signing("runs", "golden", run_id, "--out", "g.jsonl", code=0)
    rotated = other("golden", "verify", "g.jsonl", code=1)
    assert "which TREADLE_GOLDEN_KEY does not hold" in rotated.stderr
    (treadle.workdir / "g.jsonl.sig").unlink()
    missing = signing("golden", "verify", "g.jsonl", code=1)
    assert missing.stderr.startswith("bad signature: g.jsonl has no signature (g.jsonl.sig is")


def test_compare_and_replay_against_a_changed_file_and_a_stored_version(
    treadle: Cli, run_id: str
) -> None:
    treadle("runs", "golden", run_id, "--out", "a.jsonl", "--unsigned", code=0)
    treadle("runs", "golden", run_id, "--out", "b.jsonl", "--unsigned", code=0)
    same = treadle("golden", "compare", "a.jsonl", "b.jsonl", code=0)
    assert same.stdout.startswith("same: a.jsonl and b.jsonl record the same run")
    second = json.loads(treadle("run", "flow.yaml", "-q", "--json", "-p", "a=4").stdout)["id"]
    treadle("runs", "golden", second, "--out", "b.jsonl", "--unsigned", code=0)
    differs = treadle("golden", "compare", "a.jsonl", "b.jsonl", code=1)
    assert "run_start (a.jsonl:1, b.jsonl:1) parameters.a: 2 != 4" in differs.stdout.splitlines()

    assert treadle("replay", run_id, "--against", "gold.flow@1", code=0).stdout.endswith(
        "identical: the same decisions at each of 2 steps\n"
    )
    treadle.write(
        "flow2.yaml", FLOW.replace("total {{ workflow.total }}", "sum {{ workflow.total }}")
    )
    changed = treadle("replay", "a.jsonl", "--against", "flow2.yaml", "--json", code=1)
    [divergence] = json.loads(changed.stdout)["divergences"]
    assert (divergence["step"], divergence["change"], divergence["what"]) == (
        "say",
        "input",
        "message (attempt 1)",
    )
    assert divergence["recorded"].startswith("total 5 with \u27e6secret:")
    assert divergence["new"].startswith("sum 5 with \u27e6secret:")
    unknown = treadle("replay", run_id, "--against", "gold.flow@9", code=2)
    assert unknown.stderr == (
        "error: --against gold.flow@9: neither a workflow file nor a stored version "
        "(definition gold.flow has no version 9)\n"
    )


def test_a_file_that_is_not_a_record_is_exit_2_naming_the_line(treadle: Cli) -> None:
    path: Path = treadle.write("bad.jsonl", '{"type": "run_start"}\n')
    refused = treadle("golden", "verify", str(path.name), "--unsigned", code=2)
    assert refused.stderr == (
        "error: bad.jsonl:1: run_start field 'schema_version': Field required\n"
    )
