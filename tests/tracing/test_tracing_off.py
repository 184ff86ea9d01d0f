"""With tracing off (the default), no process imports anything of OpenTelemetry.

A fresh interpreter imports the scheduler's process, the worker's tasks and the commands
that start them, goes through each service command's tracing start-up with the default
settings, and runs one attempt through the worker's task body: OpenTelemetry stays out
of ``sys.modules``. A missing or bad trace setting stops a service at start (exit 2)
naming the variable.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import textwrap

import pytest
import typer

from treadle.cli.trace_setup import start_traces
from treadle.common.settings import Settings
from treadle.common.tracing import NO_TRACING, TracedProcess, active_tracing
from treadle.testing.processes import treadle_environment

PROBE = textwrap.dedent(
    """
    import json, logging, sys

    from treadle.cli.trace_setup import start_traces
    from treadle.common.settings import Settings
    from treadle.common.tracing import TracedProcess, active_tracing
    import treadle.scheduler.service.process
    import treadle.worker.tasks as tasks

    settings = Settings()
    for process in TracedProcess:
        start_traces(settings, process, logging.getLogger("probe"))

    ran = []

    class Task:
        name = "treadle.run.python"
        request = type("Request", (), {"headers": {}, "hostname": "w@h", "timelimit": None,
                                       "delivery_info": {}})()
        worker_runtime = type("Runtime", (), {"counters": None,
                                              "identity": type("I", (), {"name": "w@h"})()})()

    tasks.run_attempt = lambda runtime, delivery: ran.append(delivery) or None
    tasks.run_dispatch(Task(), {"attempt_id": "r/1/0/1", "task": "t"})
    print(json.dumps({
        "ran": len(ran),
        "enabled": active_tracing().enabled,
        "otel": sorted(m for m in sys.modules if m.split(".")[0] == "opentelemetry"),
    }))
    """
)


@pytest.mark.slow  # a fresh interpreter imports the scheduler and the worker: about 2 s of CPU
def test_tracing_off_imports_nothing_of_opentelemetry() -> None:
    env = treadle_environment()  # no TREADLE_* variable: the default, none
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen == {"ran": 1, "enabled": False, "otel": []}


def test_a_file_exporter_without_a_file_stops_a_service_at_start(
    capsys: pytest.CaptureFixture[str],
) -> None:
    settings = Settings(trace_exporter="file")
    with pytest.raises(typer.Exit) as stopped:
        start_traces(settings, TracedProcess.SCHEDULER, logging.getLogger("test"))
    assert stopped.value.exit_code == 2
    message = "TREADLE_TRACE_FILE: required when TREADLE_TRACE_EXPORTER is file"
    assert message in capsys.readouterr().err
    assert active_tracing() is NO_TRACING
