"""``treadle health scheduler|worker|beat`` judges the heartbeat file a service writes: exit 0
and one line when it makes progress, else exit 1 and one line saying why.

The files here are written by the services' own writer with a clock set back where
staleness is the point, so no test waits for time to pass; the real services writing
them are in ``test_service_health.py``.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from treadle.common.heartbeat import HeartbeatWriter, ServiceName
from treadle.testing.cli import CliResult, TreadleCli
from treadle.testing.processes import treadle_environment


@pytest.fixture
def health_dir(tmp_path: Path) -> Path:
    return tmp_path / "health"


@pytest.fixture
def health(tmp_path: Path, health_dir: Path) -> Callable[..., CliResult]:
    cli = TreadleCli(tmp_path, treadle_environment(health_dir=str(health_dir)), in_process=True)

    def run(*args: str, **settings: str) -> CliResult:
        if settings:
            env = treadle_environment(health_dir=str(health_dir), **settings)
            return TreadleCli(tmp_path, env, in_process=True)("health", *args)
        return cli("health", *args)

    return run


def writer(
    health_dir: Path, service: ServiceName, *, ago: float = 0.0, every: float = 5.0
) -> HeartbeatWriter:
    """The service's writer, its clock ``ago`` seconds behind (a file written back then)."""
    then = datetime.now(UTC) - timedelta(seconds=ago)
    return HeartbeatWriter(health_dir / f"{service}.json", service, every=every, clock=lambda: then)


def test_no_heartbeat_means_not_running_here(health: Callable[..., CliResult], health_dir: Path):
    result = health("scheduler")
    assert result.code == 1, result
    assert result.stdout == ""
    line = result.stderr.strip()
    assert line == (
        f"scheduler is not running here: no heartbeat at {health_dir / 'scheduler.json'} "
        "(`treadle scheduler` writes it once started, to TREADLE_HEALTH_DIR)"
    )


@pytest.mark.parametrize("service", list(ServiceName))
def test_a_service_making_progress_is_healthy(
    service: ServiceName, health: Callable[..., CliResult], health_dir: Path
) -> None:
    writer(health_dir, service).progressed("database db:5432, broker rabbitmq:5672")
    result = health(service.value)
    assert result.code == 0, result
    assert result.stderr == ""
    [line] = result.stdout.splitlines()
    assert line.startswith(f"{service} (pid ")
    assert "is healthy: progress " in line
    assert line.endswith("ago; database db:5432, broker rabbitmq:5672")


def test_no_progress_for_longer_than_the_limit_is_unhealthy_with_the_last_error(
    health: Callable[..., CliResult], health_dir: Path
) -> None:
    beat = writer(health_dir, ServiceName.SCHEDULER, ago=120)
    beat.progressed("database db:5432")
    beat.trouble("OperationalError: could not connect to server: Connection refused")
    result = health("scheduler")
    assert result.code == 1, result
    line = result.stderr.strip()
    assert "has made no progress for 12" in line  # 120 s and the moment the test took
    assert line.endswith(
        "s (TREADLE_HEALTH_STALE_SECONDS=60): "
        "OperationalError: could not connect to server: Connection refused"
    )


def test_the_limit_is_a_setting_and_an_option(
    health: Callable[..., CliResult], health_dir: Path
) -> None:
    writer(health_dir, ServiceName.BEAT, ago=45).progressed("database db:5432")
    assert health("beat").code == 0  # 45 s < 60 s, the default
    stale = health("beat", health_stale_seconds="30")
    assert stale.code == 1, stale
    assert "(TREADLE_HEALTH_STALE_SECONDS=30)" in stale.stderr
    assert health("beat", "--stale-after", "40").code == 1
    assert health("beat", "--stale-after", "90", health_stale_seconds="30").code == 0


def test_a_service_still_starting_is_not_healthy_yet_and_says_what_it_waits_for(
    health: Callable[..., CliResult], health_dir: Path
) -> None:
    writer(health_dir, ServiceName.WORKER, ago=12).starting("connecting to the broker")
    result = health("worker")
    assert result.code == 1, result
    assert "is starting (for 12" in result.stderr
    assert result.stderr.strip().endswith("s): connecting to the broker")


def test_a_stopped_service_is_not_healthy(
    health: Callable[..., CliResult], health_dir: Path
) -> None:
    beat = writer(health_dir, ServiceName.WORKER)
    beat.progressed("broker rabbitmq:5672")
    beat.stopped()
    result = health("worker")
    assert result.code == 1, result
    assert " stopped " in result.stderr
    assert result.stderr.strip().endswith("ago")


def test_a_process_that_died_without_a_word_is_gone(
    health: Callable[..., CliResult], health_dir: Path
) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    pid = int(dead.stdout)
    writer(health_dir, ServiceName.SCHEDULER).progressed("database db:5432")
    path = health_dir / "scheduler.json"
    document = json.loads(path.read_text())
    path.write_text(json.dumps({**document, "pid": pid}))
    result = health("scheduler")
    assert result.code == 1, result
    assert result.stderr.strip().startswith(
        f"scheduler (pid {pid}) is gone: it exited without stopping cleanly"
    )


def test_a_file_that_is_not_a_heartbeat_is_named(
    health: Callable[..., CliResult], health_dir: Path
) -> None:
    health_dir.mkdir()
    (health_dir / "beat.json").write_text('{"service": "beat"}')
    result = health("beat")
    assert result.code == 1, result
    assert result.stderr.strip() == (
        f"beat: {health_dir / 'beat.json'} is not a heartbeat: state: Field required"
    )


def test_an_unknown_service_is_a_usage_error(health: Callable[..., CliResult]) -> None:
    result = health("flower")
    assert result.code == 2, result
    words = " ".join(result.output.replace("│", " ").split())  # rich's box, unwrapped
    assert "Usage: treadle health [OPTIONS] {SERVICE}" in words
    assert "'flower' is not one of 'scheduler', 'worker', 'beat', 'api'" in words


def test_api_health_says_nothing_answers(health: Callable[..., CliResult]) -> None:
    result = health("api", "--url", "http://127.0.0.1:1", "--timeout", "2")
    assert result.code == 1, result
    assert result.stderr.startswith("api is not answering at http://127.0.0.1:1: ")
    assert result.stderr.strip().endswith("(is `treadle api` running here?)")
    bad = health("api", "--url", "127.0.0.1:8080")
    assert bad.code == 2, bad
    assert "expected an http:// or https:// URL" in bad.stderr


def test_the_writer_writes_a_change_at_once_and_progress_at_most_every_interval(
    tmp_path: Path,
) -> None:
    path = tmp_path / "scheduler.json"
    ticks = iter([0.0, 0.0, 1.0, 1.0, 2.0, 2.0, 6.0, 6.0])
    beat = HeartbeatWriter(path, ServiceName.SCHEDULER, every=5.0, monotonic=lambda: next(ticks))
    beat.progressed("database db:5432")  # a change of state: written
    first = json.loads(path.read_text())
    beat.progressed()  # 1 s later, nothing new: not written
    assert json.loads(path.read_text()) == first
    beat.trouble("OperationalError: the database went away")  # a new problem: written
    assert json.loads(path.read_text())["problem"] == "OperationalError: the database went away"
    beat.progressed()  # recovered: written at once, the problem cleared
    assert json.loads(path.read_text())["problem"] is None
    assert first["state"] == "running"
    assert first["connected_to"] == "database db:5432"


def test_a_folder_it_cannot_write_to_is_logged_once_and_never_fails_the_service(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    beat = HeartbeatWriter(blocker / "worker.json", ServiceName.WORKER, every=0)
    caplog.set_level(logging.WARNING, logger="treadle.health")
    beat.starting("connecting")
    beat.progressed("broker")
    beat.stopped()
    warnings = [r.getMessage() for r in caplog.records if r.name == "treadle.health"]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"cannot write the heartbeat file {blocker / 'worker.json'}")
