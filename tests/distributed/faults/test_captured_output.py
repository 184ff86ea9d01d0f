"""What actions print, end to end: a real ``treadle worker`` (prefork) captures it, the
report carries it over RabbitMQ, a real ``treadle scheduler`` stores it in PostgreSQL, and
the task's attempts show it beside the input they were dispatched with.

A Python action printing on stdout and stderr (a secret parameter among its input), a
shell command printing more than ``TREADLE_CAPTURE_OUTPUT_BYTES`` (its tail kept,
``truncated``), and a shell command that fails after printing.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

from treadle.scheduler.service.attempt_views import task_attempts

from .conftest import Deployment, base_settings, deployment

pytestmark = [pytest.mark.services, pytest.mark.slow]

LIMIT = 200
TOKEN = "tok-Pq7Xv2Nr8Ks4"

PACK = {
    "pack.yaml": "ref: ctest\nversion: '1.0.0'\n",
    "actions/say.yaml": """
        name: say
        runner_type: python
        entry_point: actions.py:say
        parameters:
          text: {type: string, required: true}
          token: {type: string, secret: true, required: true}
          lines: {type: integer, default: 1}
    """,
    "actions/actions.py": """
        import os
        import sys


        def say(text, token, lines=1):
            for n in range(lines):
                print(f"{n}: {text} (token {token}) from {os.getpid()}")
            print("a warning", file=sys.stderr)
            return {"said": lines}
    """,
    "workflows/flow.yaml": """
        ref: ctest.flow
        parameters:
          token: {type: string, required: true}
        tasks:
          - name: speak
            action: ctest.say
            input: {text: "hello", token: "{{ parameters.token }}", lines: 3}
            next:
              - do: [count, fail_loudly]
          - name: count
            action: core.shell
            input: {cmd: "seq 1 500"}
          - name: fail_loudly
            action: core.shell
            input: {cmd: "echo about to fail; echo oops >&2; exit 4"}
            next:
              - when: "{{ failed() }}"
                do: [noted]
          - name: noted
            action: core.noop
    """,
}


@pytest.fixture(scope="module")
def printing(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    packs = tmp_path_factory.mktemp("packs")
    for name, text in PACK.items():
        path = packs / "ctest" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    settings = base_settings(packs, shell_enabled="true", capture_output_bytes=LIMIT)
    with deployment(tmp_path_factory.mktemp("logs"), **settings) as made:
        scheduler = made.scheduler()
        worker = made.worker(concurrency=2)
        made.started(scheduler, worker)
        yield made


def _attempt(services: Deployment, run_id: str, task: str) -> dict[str, Any]:
    with services.store.snapshot() as uow:
        [attempt] = task_attempts(uow, run_id, task)["attempts"]
    return attempt  # type: ignore[no-any-return]


def test_a_worker_process_captures_what_actions_print_and_the_scheduler_stores_it(
    printing: Deployment,
) -> None:
    with printing.client() as client:
        run_id = client.start("ctest.flow", {"token": TOKEN})
    printing.wait_for_runs([run_id], timeout=60)

    spoken = _attempt(printing, run_id, "speak")
    assert spoken["status"] == "succeeded"
    assert spoken["worker"].startswith("worker-")  # the real worker process
    assert spoken["input"] == {"text": "hello", "token": "***", "lines": 3}
    output = spoken["output"]
    lines = output["stdout"].splitlines()
    assert [line.split(" from ")[0] for line in lines] == [
        f"{n}: hello (token ***)" for n in range(3)
    ]
    pids = {line.rsplit(" ", 1)[1] for line in lines}
    assert len(pids) == 1
    assert pids != {str(printing.processes[1].pid)}
    assert (output["stderr"], output["stdout_truncated"]) == ("a warning\n", False)

    counted = _attempt(printing, run_id, "count")
    assert counted["input"] == {"cmd": "seq 1 500"}
    assert counted["output"]["stdout_truncated"] is True
    assert len(counted["output"]["stdout"].encode()) <= LIMIT
    assert counted["output"]["stdout"].endswith("\n498\n499\n500\n")

    failed = _attempt(printing, run_id, "fail_loudly")
    assert failed["status"] == "failed"
    assert failed["error"]["type"] == "CommandFailed"
    assert failed["output"] == {
        "stdout": "about to fail\n",
        "stderr": "oops\n",
        "stdout_truncated": False,
        "stderr_truncated": False,
    }
    assert _attempt(printing, run_id, "noted")["output"] is None  # it printed nothing

    with printing.store.engine.connect() as connection:
        stored = connection.exec_driver_sql(
            "SELECT string_agg(stdout || stderr, '') FROM attempt_outputs WHERE run_id = %s",
            (run_id,),
        ).scalar_one()
    assert "a warning" in stored
    assert TOKEN not in stored
