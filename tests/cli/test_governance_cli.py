"""The sandbox, side-effect keys and seeds as a user meets them on the command line.

``treadle validate --policy`` prints the sandbox's findings (JSON with ``--json``) and
fails on a violation; ``treadle run`` refuses a run whose parameters break the policy in
force and stores nothing; an action with ``side_effects: true`` sees one key across its
automatic retries and ``treadle runs retry``; ``treadle run --seed`` gives the same
decisions for the same seed.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.cli.conftest import Cli

RISKY = """\
ref: demo.risky
tasks:
  - name: post
    action: core.http
    input: {url: "https://api.example.com/items?a=1&b=2", method: POST}
  - name: list
    action: core.shell
    input: {cmd: "ls | wc -l"}
  - name: exec
    action: aos.shell_exec
"""

SAFE = """\
ref: demo.safe
parameters:
  name: {type: string}
tasks:
  - name: hello
    action: core.echo
    input: {message: "Hello, {{ parameters.name | default('you') }}"}
"""


def test_validate_policy_reports_each_finding_and_fails_on_violations(treadle: Cli) -> None:
    risky = treadle.write("risky.yaml", RISKY)
    safe = treadle.write("safe.yaml", SAFE)

    found = treadle("validate", "--policy", risky, code=2)
    as_json = treadle("validate", "--policy", "--json", risky, code=2).json()
    clean = treadle("validate", "--policy", safe, code=0)
    without = treadle("validate", risky, code=0)  # no --policy: the definition is valid

    assert f"{risky}:8:13: sandbox violation: task 'list': literal input 'cmd' looks like " in (
        found.stdout
    )
    assert f"{risky}:10:5: sandbox violation: task 'exec' calls 'aos.shell_exec'" in found.stdout
    assert "sandbox warning: task 'post' calls 'core.http', which sends POST" in found.stdout
    assert "invalid: 1 warning, 2 sandbox violations, 1 sandbox warning in 1 path" in found.stderr
    assert as_json["valid"] is False
    assert [(v["task"], v["reason"], v["field"]) for v in as_json["violations"]] == [
        ("list", "command_injection", "input.cmd"),
        ("exec", "forbidden_action", "action"),
    ]
    assert as_json["warnings"][0]["workflow"] == "demo.risky"
    assert as_json["violations"][0]["pattern_class"] == "command"
    assert "valid: 1 path checked" in clean.stderr
    assert "sandbox" not in without.stdout


def test_validate_with_a_policy_file(treadle: Cli) -> None:
    risky = treadle.write("risky.yaml", RISKY)
    strict = treadle.write(
        "strict.yaml",
        """\
        forbidden_actions: [core.echo]
        undeclared_side_effects: violation
        literal_inputs: false
        """,
    )
    broken = treadle.write("broken.yaml", "forbidden_actions: 3\n")

    result = treadle("validate", "--policy-file", strict, "--json", risky, code=2).json()
    bad = treadle("validate", "--policy-file", broken, risky, code=2)

    # aos.shell_exec is no longer forbidden, shell pipes are the author's; POST is refused
    assert [(v["task"], v["reason"]) for v in result["violations"]] == [
        ("post", "undeclared_side_effects")
    ]
    assert f"error: {broken}: forbidden_actions: Input should be a valid" in bad.stderr


def test_run_refuses_what_the_workspace_policy_forbids_and_stores_nothing(
    treadle: Cli,
) -> None:
    safe = treadle.write("safe.yaml", SAFE)
    treadle.env["TREADLE_SANDBOX_POLICY"] = json.dumps({"workflows": {}})  # the default one

    refused = treadle("run", safe, "-p", "name={{ config.password }}", code=2)
    listed = treadle("runs", "list", "--json", code=0).json()
    fine = treadle("run", safe, "-p", "name=Ada", code=0)

    assert refused.stderr.splitlines() == [
        "error: the sandbox policy refused the run of demo.safe:",
        "  parameter 'name' looks like template injection ('{{')",
    ]
    assert listed == []  # refused before anything was stored
    assert json.loads(fine.stdout) == {}  # the run went on (its output map is empty)


SIDE_EFFECTS_PACK = {
    "pay/pack.yaml": "ref: pay\nversion: 1.0.0\n",
    "pay/actions/charge.yaml": """\
        name: charge
        runner_type: python
        entry_point: charge.py:charge
        side_effects: true
        parameters:
          ledger: {type: string, required: true}
        """,
    "pay/actions/charge.py": """\
        from pathlib import Path

        from treadle.worker.attempt_context import current_attempt


        def charge(ledger: str) -> dict:
            attempt = current_attempt()
            with open(ledger, "a") as keys:
                keys.write(attempt.idempotency_key + "\\n")
            if not Path(ledger + ".ok").exists():
                raise RuntimeError("the card was declined")
            return {"charged": True}
        """,
}


def test_one_key_across_automatic_retries_and_runs_retry(treadle: Cli) -> None:
    for name, text in SIDE_EFFECTS_PACK.items():
        treadle.write(name, text)
    packs = treadle.workdir
    ledger = treadle.workdir / "ledger.txt"
    treadle.write(
        "pay.yaml",
        f"""\
        ref: demo.pay
        tasks:
          - name: charge
            action: pay.charge
            retry: {{count: 1}}
            input: {{ledger: "{ledger}"}}
        """,
    )

    failed = treadle("run", "pay.yaml", "--pack-path", packs, "--json", code=1).json()
    Path(f"{ledger}.ok").write_text("")
    retried = treadle("runs", "retry", failed["id"], "--pack-path", packs, "--json", code=0).json()

    keys = ledger.read_text().splitlines()
    assert len(keys) == 3  # two automatic attempts, then the manual retry
    assert len(set(keys)) == 1
    assert retried["tasks"][0]["attempts"] == 3
    assert retried["tasks"][0]["result"] == {"charged": True}


SEEDED = """\
ref: demo.seeded
tasks:
  - name: first
    action: core.echo
    input: {message: "{{ ((system.seed * 2654435761 + 17) % 4294967296) | string }}"}
    next: [{do: [second]}]
  - name: second
    action: core.echo
    input: {message: "{{ task.first.result.message }}/{{ (system.seed * 7 + 3) % 1000 }}"}
output_map:
  seed: "{{ system.seed }}"
"""


def _decisions(document: dict[str, object]) -> list[tuple[object, ...]]:
    tasks = document["tasks"]
    assert isinstance(tasks, list)
    return [(t["name"], t["status"], t["result"]) for t in tasks]


def test_the_same_seed_gives_the_same_decisions(treadle: Cli) -> None:
    treadle.write("seeded.yaml", SEEDED)

    one = treadle("run", "seeded.yaml", "--seed", "42", "--json", code=0).json()
    two = treadle("run", "seeded.yaml", "--seed", "42", "--json", code=0).json()
    other = treadle("run", "seeded.yaml", "--seed", "43", "--json", code=0).json()
    biggest = treadle("run", "seeded.yaml", "--seed", str(2**63 - 1), "--json", code=0).json()
    negative = treadle("run", "seeded.yaml", "--seed", "-1", code=2)
    too_big = treadle("run", "seeded.yaml", "--seed", str(2**63), code=2)

    assert one["id"] != two["id"]
    assert (one["seed"], one["output"]) == (42, {"seed": 42})
    assert _decisions(one) == _decisions(two)
    assert _decisions(one)[0][2] == {"message": str((42 * 2654435761 + 17) % 4294967296)}
    assert _decisions(other) != _decisions(one)
    assert biggest["seed"] == 2**63 - 1
    assert "--seed" in negative.stderr
    assert "--seed" in too_big.stderr
