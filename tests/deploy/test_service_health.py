"""``treadle health`` against the real services: each of ``treadle scheduler``, ``worker``,
``beat`` and ``api`` started as an operator starts it (PostgreSQL and RabbitMQ for real),
healthy while it runs, and unhealthy with the reason once it is stopped or killed.

Each test starts one real process (2-4 s of imports and connecting): marked slow.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from treadle.common.heartbeat import read_heartbeat
from treadle.scheduler.store import Store
from treadle.testing import throwaway_postgres_database, throwaway_rabbitmq_vhost
from treadle.testing.cli import CliResult, TreadleCli
from treadle.testing.processes import ServiceProcess, treadle_environment, wait_until
from treadle.testing.redis_server import free_port

pytestmark = [pytest.mark.services, pytest.mark.slow]


@dataclass(frozen=True)
class Backends:
    database_url: str
    broker_url: str


@pytest.fixture(scope="module")
def backends() -> Iterator[Backends]:
    with (
        throwaway_postgres_database("treadle_health") as database_url,
        throwaway_rabbitmq_vhost("treadle_health") as broker_url,
    ):
        Store.open(database_url).close()  # the schema, as `treadle db upgrade` makes it
        yield Backends(database_url, broker_url)


@pytest.fixture
def environment(backends: Backends, tmp_path: Path) -> dict[str, str]:
    return treadle_environment(
        database_url=backends.database_url,
        broker_url=backends.broker_url,
        health_dir=str(tmp_path / "health"),
        health_stale_seconds=4,  # heartbeats every second
        log_level="INFO",
    )


@pytest.fixture
def health(tmp_path: Path, environment: dict[str, str]) -> Callable[..., CliResult]:
    cli = TreadleCli(tmp_path, environment, in_process=True)
    return lambda *args: cli("health", *args)


@pytest.fixture
def start(tmp_path: Path, environment: dict[str, str]) -> Iterator[Callable[..., ServiceProcess]]:
    started: list[ServiceProcess] = []

    def run(*args: str) -> ServiceProcess:
        process = ServiceProcess(args[0], args, environment, tmp_path / f"{args[0]}.log")
        started.append(process)
        return process

    yield run
    for process in started:
        process.close()


def healthy(health: Callable[..., CliResult], process: ServiceProcess, *args: str) -> str:
    """Wait until ``treadle health ARGS`` exits 0; its line."""

    def look() -> str | None:
        if not process.running:
            raise AssertionError(f"{process.name} exited {process.returncode}:\n{process.tail()}")
        result = health(*args)
        return result.stdout.strip() if result.code == 0 else None

    return wait_until(
        look,
        60,
        f"treadle health {' '.join(args)} exiting 0",
        interval=0.2,
        describe=lambda: f"{health(*args)}\n{process.tail(20)}",
    )


def keeps_beating(tmp_path: Path, service: str) -> None:
    """The heartbeat's progress moves on while the service runs (not only its first write)."""
    path = tmp_path / "health" / f"{service}.json"
    first = read_heartbeat(path)
    assert first is not None
    assert first.progress_at is not None

    def moved() -> bool:
        now = read_heartbeat(path)
        return (
            now is not None and now.progress_at is not None and now.progress_at > first.progress_at
        )

    wait_until(moved, 15, f"the {service}'s heartbeat moving on", interval=0.2)


def test_a_running_scheduler_is_healthy_and_a_stopped_one_is_not(
    start: Callable[..., ServiceProcess], health: Callable[..., CliResult], tmp_path: Path
) -> None:
    before = health("scheduler")
    assert before.code == 1
    assert "scheduler is not running here" in before.stderr
    scheduler = start("scheduler")
    line = healthy(health, scheduler, "scheduler")
    assert f"scheduler (pid {scheduler.pid}) is healthy: progress " in line
    assert line.endswith(
        "; database 127.0.0.1:5432, broker 127.0.0.1:5672, consuming treadle.results"
    )
    keeps_beating(tmp_path, "scheduler")
    assert scheduler.terminate() == 0, scheduler.tail()
    after = health("scheduler")
    assert after.code == 1, after
    assert after.stderr.startswith(f"scheduler (pid {scheduler.pid}) stopped ")


def test_a_consuming_worker_is_healthy_and_a_killed_one_is_gone(
    start: Callable[..., ServiceProcess], health: Callable[..., CliResult], tmp_path: Path
) -> None:
    worker = start("worker", "--pool", "threads", "--concurrency", "1", "--hostname", "h1@%h")
    line = healthy(health, worker, "worker")
    assert f"worker (pid {worker.pid}) is healthy: progress " in line
    assert "; broker 127.0.0.1:5672, consuming treadle.tasks" in line
    keeps_beating(tmp_path, "worker")
    worker.kill()  # SIGKILL: no chance to say it stopped
    after = health("worker")
    assert after.code == 1, after
    assert after.stderr.startswith(
        f"worker (pid {worker.pid}) is gone: it exited without stopping cleanly"
    )


def test_a_ticking_beat_is_healthy_and_a_stopped_one_is_not(
    start: Callable[..., ServiceProcess], health: Callable[..., CliResult], tmp_path: Path
) -> None:
    beat = start("beat")
    line = healthy(health, beat, "beat")
    assert f"beat (pid {beat.pid}) is healthy: progress " in line
    assert "; database 127.0.0.1:5432, " in line
    assert line.endswith(" schedule(s)")
    keeps_beating(tmp_path, "beat")
    beat.signal(signal.SIGTERM)
    assert beat.process.wait(30) == 0, beat.tail()
    after = health("beat")
    assert after.code == 1, after
    assert " stopped " in after.stderr


def test_a_ready_api_is_healthy_and_one_that_is_gone_does_not_answer(
    start: Callable[..., ServiceProcess], health: Callable[..., CliResult]
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api = start("api", "--port", str(port))
    line = healthy(health, api, "api", "--url", url)
    assert line == f"api at {url} is ready: database ok, broker ok"
    api.close()  # SIGTERM: uvicorn finishes its requests and exits
    after = health("api", "--url", url)
    assert after.code == 1, after
    assert after.stderr.startswith(f"api is not answering at {url}: ")
