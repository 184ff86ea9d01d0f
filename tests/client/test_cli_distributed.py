"""``treadle workflows register`` and ``treadle run --distributed`` as a user runs them.

The commands are subprocesses on a throwaway PostgreSQL database. Where a run must move,
an embedded runner in a thread of this test process drives every unfinished run of that
database (the ``driver`` fixture), standing in for ``treadle scheduler`` and its workers:
this proves the command side. The exit codes and output must be those of embedded runs.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Callable
from typing import Any

import pytest

from treadle.client import Client
from treadle.scheduler.store import RunSummary

pytestmark = [pytest.mark.services, pytest.mark.slow]

GREET = """\
ref: demo.greet
parameters:
  name: {type: string, required: true}
tasks:
  - name: say
    action: core.echo
    input: {message: "Hello, {{ parameters.name }}!"}
output_map:
  greeting: "{{ task.say.result.message }}"
"""

PACK_YAML = "ref: mypack\n"
PACK_FLOW = """\
ref: mypack.flow
tasks:
  - name: one
    action: core.noop
"""


def versions(database_url: str, ref: str) -> list[int]:
    with Client(database_url) as client, client.store.unit_of_work() as uow:
        return [v.version for v in uow.list_definition_versions(ref)]


def test_register_publishes_files_and_packs_once_per_change(
    treadle: Any, database_url: str
) -> None:
    greet = treadle.write("greet.yaml", GREET)
    treadle.write("mypack/pack.yaml", PACK_YAML)
    treadle.write("mypack/workflows/flow.yaml", PACK_FLOW)

    first = treadle("workflows", "register", greet, "mypack", code=0)
    assert first.stdout.splitlines() == ["demo.greet v1 (new)", "mypack.flow v1 (new)"]

    again = treadle("workflows", "register", "greet.yaml", "mypack/pack.yaml", code=0)
    assert again.stdout.splitlines() == ["demo.greet v1 (unchanged)", "mypack.flow v1 (unchanged)"]

    treadle.write("greet.yaml", GREET.replace("Hello", "Hi"))
    changed = treadle("workflows", "register", "greet.yaml", "mypack", code=0)
    assert changed.stdout.splitlines() == ["demo.greet v2 (new)", "mypack.flow v1 (unchanged)"]
    assert versions(database_url, "demo.greet") == [1, 2]


def test_register_refuses_invalid_definitions_and_publishes_none(
    treadle: Any, database_url: str
) -> None:
    treadle.write("greet.yaml", GREET)
    treadle.write(
        "bad.yaml",
        """\
        ref: demo.bad
        tasks:
          - name: one
            action: core.echo
            input: {mesage: hi}
            next:
              - do: [nowhere]
        """,
    )
    refused = treadle("workflows", "register", "greet.yaml", "bad.yaml", code=2)
    assert refused.stdout == ""
    lines = refused.stderr.splitlines()
    assert "bad.yaml:7:14: task 'one' transitions to unknown task 'nowhere'" in lines
    assert any(re.match(r"bad\.yaml:5:\d+: task 'one' gives input 'mesage'", x) for x in lines)
    assert lines[-1] == "error: 3 error(s); nothing was registered"
    assert versions(database_url, "demo.greet") == []


def test_register_against_a_database_that_is_down_fails_clearly(treadle: Any) -> None:
    treadle.write("greet.yaml", GREET)
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    treadle.env["TREADLE_DATABASE_URL"] = f"postgresql+psycopg2://treadle@127.0.0.1:{port}/treadle"
    down = treadle("workflows", "register", "greet.yaml", code=1)
    assert down.stderr.startswith(f"error: database at 127.0.0.1:{port}/treadle is unavailable: ")


@pytest.mark.usefixtures("driver")
def test_a_distributed_run_prints_what_an_embedded_run_prints(treadle: Any) -> None:
    treadle.write("greet.yaml", GREET)
    result = treadle("run", "--distributed", "greet.yaml", "-p", "name=Ada", code=0)
    assert json.loads(result.stdout) == {"greeting": "Hello, Ada!"}
    lines = result.stderr.splitlines()
    assert re.fullmatch(r"run r-[0-9a-f]+ of demo\.greet", lines[0])
    assert any(re.fullmatch(r"  ✓ say succeeded in \d+\.\d\ds", line) for line in lines)
    assert re.fullmatch(r"run r-[0-9a-f]+ succeeded", lines[-1])

    document = treadle(
        "run", "--distributed", "examples.hello_world", "-p", "name=Bo", "--json", "-q", code=0
    )
    assert document.stderr == ""
    run = json.loads(document.stdout)
    assert (run["workflow"], run["version"], run["status"]) == (
        "examples.hello_world",
        1,
        "succeeded",
    )
    assert run["output"] == {"greeting": "Hello, Bo!"}
    assert run["parameters"] == {"name": "Bo"}


@pytest.mark.usefixtures("driver")
def test_a_distributed_run_that_waits_or_fails_exits_as_an_embedded_one(treadle: Any) -> None:
    waiting = treadle("run", "--distributed", "examples.inquiry", code=3)
    assert waiting.stdout == ""
    assert re.search(r"run r-[0-9a-f]+ is waiting", waiting.stderr), waiting.stderr
    assert re.search(r"treadle inquiry respond iq_[0-9a-f]+ --data", waiting.stderr)

    treadle.write(
        "fails.yaml",
        """\
        ref: demo.fails
        tasks:
          - name: boom
            action: core.fail
            input: {message: it broke}
        """,
    )
    failed = treadle("run", "--distributed", "fails.yaml", code=1)
    assert failed.stdout == ""
    assert re.search(r"run r-[0-9a-f]+ failed: .*it broke", failed.stderr), failed.stderr


def test_bad_parameters_start_and_publish_nothing(
    treadle: Any, database_url: str, stored_runs: Callable[[], list[RunSummary]]
) -> None:
    treadle.write("greet.yaml", GREET)
    refused = treadle("run", "--distributed", "greet.yaml", "-p", "nme=Ada", code=2)
    assert refused.stderr.startswith("error: invalid parameters for demo.greet:\n  ")
    assert "name" in refused.stderr
    assert "nme" in refused.stderr
    assert stored_runs() == []
    assert versions(database_url, "demo.greet") == []


def test_without_a_scheduler_the_command_says_why_and_gives_up_after_wait_timeout(
    treadle: Any, database_url: str, stored_runs: Callable[[], list[RunSummary]]
) -> None:
    treadle.write("greet.yaml", GREET)
    result = treadle(
        "run", "--distributed", "greet.yaml", "-p", "name=Ada", "--wait-timeout", "1", code=1
    )
    assert result.stdout == ""
    [run] = stored_runs()
    database = database_url.rsplit("@", 1)[1].removeprefix("127.0.0.1:5432/")
    hint = next(line for line in result.stderr.splitlines() if line.startswith("hint: "))
    assert hint.startswith(
        f"hint: no scheduler seems to be running against 127.0.0.1:5432/{database}: "
    )
    assert result.stderr.rstrip().endswith(
        f"error: run {run.id} is still running after 1 s (--wait-timeout); it goes on "
        f"without this command: treadle runs show {run.id}"
    )
    assert run.status.value == "running"
