"""``treadle scheduler`` as operators run it: a process that starts, serves, stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from treadle.common.settings import Settings
from treadle.scheduler.store import Store

from .conftest import SettingsFactory, wait_until

pytestmark = [pytest.mark.services, pytest.mark.slow]

TREADLE = Path(sys.executable).parent / "treadle"


class Service:
    """A running ``treadle scheduler``; its stderr lines are collected as they come."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line.rstrip("\n"))

    def logged(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def stop(self, timeout: float = 15) -> int:
        self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=5)
        return code


@contextmanager
def scheduler_service(settings: Settings, *args: str) -> Iterator[Service]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TREADLE_")}
    env.update(
        TREADLE_DATABASE_URL=settings.database_url,
        TREADLE_BROKER_URL=settings.broker_url,
        TREADLE_DEFAULT_QUEUE=settings.default_queue,
        TREADLE_RESULTS_QUEUE=settings.results_queue,
        TREADLE_LOG_LEVEL="INFO",
    )
    process = subprocess.Popen(
        [str(TREADLE), "scheduler", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield Service(process)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


def test_the_scheduler_registers_its_packs_and_exits_0_on_sigterm(
    make_settings: SettingsFactory, pack_dir: Path
) -> None:
    settings = make_settings()
    with scheduler_service(settings, "--pack-path", str(pack_dir)) as service:
        wait_until(
            lambda: service.logged("scheduler started") or service.process.poll() is not None,
            timeout=60,
            what="the scheduler's start",
        )
        assert service.process.poll() is None, service.output
        code = service.stop()
    assert code == 0, service.output
    for stage in (
        "connecting to the database at 127.0.0.1:5432",
        "database ready",
        "registered 3 pack(s) (core, examples, schedtest)",
        "published 23 workflow definition(s)",
        "connecting to the broker at 127.0.0.1:5672",
        "broker ready: consuming " + settings.results_queue,
        "listening for new work on PostgreSQL channel treadle_outbox",
        "stopping (SIGTERM)",
        "scheduler stopped",
    ):
        assert stage in service.output, f"{stage!r} not logged:\n{service.output}"
    with Store.open(settings.database_url, migrate=False) as store, store.unit_of_work() as uow:
        actions = {row["ref"]: row for row in uow.registered_actions()}
        routed = uow.get_definition("schedtest.routed")
    assert actions["schedtest.special"]["queue"] == "treadle-test.special"
    assert routed.version >= 1


def test_a_scheduler_waiting_for_the_broker_logs_why_and_stops_on_sigterm(
    make_settings: SettingsFactory,
) -> None:
    settings = make_settings(broker_url="amqp://guest:guest@127.0.0.1:1//")
    with scheduler_service(settings) as service:
        wait_until(
            lambda: (
                service.logged("broker at 127.0.0.1:1 unreachable")
                or service.process.poll() is not None
            ),
            timeout=60,
            what="a retry of the broker",
        )
        assert service.process.poll() is None, service.output
        code = service.stop()
    assert code == 0, service.output
    assert "retrying in 1 s" in service.output
    assert "before start-up finished" in service.output
