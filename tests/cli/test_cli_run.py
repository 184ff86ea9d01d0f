"""``treadle run`` as a user runs it: targets, parameters, output, exit codes.

Exit codes: 0 succeeded; 1 failed; 2 invalid definition, parameters or usage (nothing is
started); 3 waiting on an inquiry (see ``test_cli_inquiry.py``). Each test groups its
assertions per invocation: every ``treadle`` call is a process start.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
RUN_KEYS = {
    "document_version",
    "id",
    "workflow",
    "version",
    "status",
    "parameters",
    "output",
    "error",
    "created_at",
    "started_at",
    "finished_at",
    "parent_run",
    "seed",
    "tasks",
    "inquiries",
}
TASK_KEYS = {
    "name",
    "execution",
    "status",
    "attempts",
    "result",
    "error",
    "started_at",
    "finished_at",
}

ECHO_PARAMETERS = """\
ref: demo.echo_parameters
parameters:
  n: {}
  s: {}
  l: {}
  flag: {}
  quoted: {}
  from_file: {}
tasks:
  - name: nothing
    action: core.noop
output_map:
  given: "{{ parameters }}"
"""


def utc(text: str) -> datetime:
    assert ISO_UTC.fullmatch(text), text
    moment = datetime.fromisoformat(text)
    assert moment.utcoffset() is not None
    assert moment.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    return moment.astimezone(UTC)


def test_a_ref_runs_and_prints_its_output_on_stdout(treadle: Any) -> None:
    result = treadle("run", "examples.hello_world", "-p", "name=Ada", code=0)
    assert result.json() == {"greeting": "Hello, Ada!"}
    lines = result.stderr.splitlines()
    assert re.fullmatch(r"run r-[0-9a-f]+ of examples\.hello_world", lines[0])
    assert any(re.fullmatch(r"  ✓ say_hello succeeded in \d+\.\d\ds", line) for line in lines)
    assert re.fullmatch(r"run r-[0-9a-f]+ succeeded", lines[-1])


def test_json_prints_exactly_one_run_document(treadle: Any) -> None:
    result = treadle("run", "examples.hello_world", "--json", "-q", "-p", "name=Ada", code=0)
    assert result.stderr == ""
    document = result.json()  # the whole of stdout is one JSON value
    assert set(document) == RUN_KEYS
    assert document["id"].startswith("r-")
    assert document["workflow"] == "examples.hello_world"
    assert document["status"] == "succeeded"
    assert document["parameters"] == {"name": "Ada"}
    assert document["output"] == {"greeting": "Hello, Ada!"}
    assert document["error"] is None
    assert document["parent_run"] is None
    assert document["inquiries"] == []
    [task] = document["tasks"]
    assert set(task) == TASK_KEYS
    assert task["name"] == "say_hello"
    assert task["status"] == "succeeded"
    assert task["attempts"] == 1
    assert task["result"] == {"message": "Hello, Ada!"}
    created, started, finished = (
        utc(document[key]) for key in ("created_at", "started_at", "finished_at")
    )
    assert created <= started <= utc(task["started_at"]) <= utc(task["finished_at"]) <= finished
    assert abs((datetime.now(UTC) - finished).total_seconds()) < 60


def test_an_invalid_file_or_bad_parameters_exit_2_and_start_nothing(treadle: Any) -> None:
    broken = treadle.write(
        "broken.yaml",
        """\
        ref: demo.broken
        tasks:
          - name: first
            action: core.noop
            retyr: {count: 2}
            next:
              - do: [secnd]
          - name: second
            action: core.noop
        """,
    )
    invalid = treadle("run", "broken.yaml", code=2)
    assert invalid.stdout == ""
    assert invalid.stderr.splitlines() == [  # every problem, as `treadle validate` reports
        f"{broken.name}:5:5: unknown field 'retyr' in task 'first' (did you mean 'retry'?)",
        f"{broken.name}:7:14: task 'first' transitions to unknown task 'secnd' "
        "(did you mean 'second'?)",
    ]

    treadle.write(
        "params.yaml",
        """\
        ref: demo.params
        parameters:
          name: {type: string, required: true}
          count: {type: integer, default: 1}
        tasks:
          - name: only
            action: core.noop
        """,
    )
    bad = treadle("run", "params.yaml", "-p", "count=many", "-p", "colour=red", code=2)
    assert bad.stdout == ""
    assert bad.stderr.splitlines() == [
        "error: invalid parameters for demo.params:",
        "  unknown parameter 'colour' (known: count, name)",
        "  missing required parameter 'name'",
        "  parameter 'count': 'many' is not of type 'integer'",
    ]

    assert treadle("runs", "list", "--json", code=0).json() == []


def test_p_values_are_json_when_they_parse_and_override_the_params_file(treadle: Any) -> None:
    treadle.write("echo.yaml", ECHO_PARAMETERS)
    treadle.write("params.yaml", "n: 1\nfrom_file: [yaml, 2]\ns: from the file\n")
    treadle.write("params.json", json.dumps({"n": 1, "from_file": {"json": True}}))
    pairs = ["-p", "n=3", "-p", "s=abc", "-p", "l=[1,2]", "-p", "flag=true"]

    from_yaml = treadle(
        "run", "echo.yaml", "--params-file", "params.yaml", *pairs, "-p", 'quoted="3"', code=0
    )
    assert from_yaml.json() == {
        "given": {
            "n": 3,
            "s": "abc",
            "l": [1, 2],
            "flag": True,
            "quoted": "3",
            "from_file": ["yaml", 2],
        }
    }

    from_json = treadle("run", "echo.yaml", "--params-file", "params.json", "-p", "n=x y", code=0)
    assert from_json.json()["given"] == {
        "n": "x y",
        "s": None,
        "l": None,
        "flag": None,
        "quoted": None,
        "from_file": {"json": True},
    }


def test_a_custom_pack_from_pack_path(treadle: Any) -> None:
    treadle.write(
        "packs/greeter/pack.yaml",
        """\
        ref: greeter
        version: "1.0.0"
        config:
          punctuation: {type: string, default: "!"}
        """,
    )
    treadle.write("packs/greeter/config.yaml", "punctuation: '!!'\n")
    treadle.write(
        "packs/greeter/actions/shout.yaml",
        """\
        name: shout
        runner_type: python
        entry_point: shout.py:shout
        parameters:
          text: {type: string, required: true}
        """,
    )
    treadle.write(
        "packs/greeter/actions/shout.py",
        """\
        def shout(text):
            return {"shouted": text.upper()}
        """,
    )
    treadle.write(
        "packs/greeter/workflows/greet.yaml",
        """\
        ref: greeter.greet
        parameters:
          who: {type: string, required: true}
        tasks:
          - name: shout
            action: greeter.shout
            input:
              text: "hello {{ parameters.who }}{{ config.punctuation }}"
        output_map:
          said: "{{ task.shout.result.shouted }}"
        """,
    )
    result = treadle("run", "greeter.greet", "--pack-path", "packs", "-p", "who=ada", code=0)
    assert result.json() == {"said": "HELLO ADA!!"}


def test_an_unknown_target_exits_2_with_a_suggestion(treadle: Any) -> None:
    result = treadle("run", "examples.hello_wrld", code=2)
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(
        "error: 'examples.hello_wrld' is neither a workflow file nor the ref of a workflow "
        "in the loaded packs (did you mean examples.hello_world"
    )
    assert not treadle.database.exists()


def test_priority_sets_the_runs_priority_and_a_bad_one_exits_2(treadle: Any) -> None:
    import sqlite3

    treadle("run", "examples.hello_world", "-q", "-p", "name=Ada", "--priority", "8", code=0)
    with sqlite3.connect(treadle.database) as connection:
        payloads = [
            json.loads(row[0])
            for row in connection.execute("SELECT payload FROM outbox WHERE kind = 'dispatch_task'")
        ]
    assert [payload["priority"] for payload in payloads] == [8]

    refused = treadle("run", "examples.hello_world", "-p", "name=Ada", "--priority", "12", code=2)
    assert "--priority" in refused.stderr
    assert "less than or equal to 9" in refused.stderr
