"""``treadle beat`` for real: PostgreSQL, RabbitMQ, a ``treadle scheduler`` and a
``treadle worker``, beats started and stopped (or SIGKILLed) by pid.

What must hold, read from the database afterwards: a schedule a workflow declares fires
and its runs succeed, seeing ``system.schedule``; one created with ``treadle schedules``
while beat runs fires within 5 seconds; with two beats on one database every due fire is
recorded once and starts one run; a beat killed and restarted accounts for the fires it
missed (each once, none lost) by the schedule's missed-fire policy.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from treadle.scheduler.core.namespaces import iso
from treadle.scheduler.core.state import RunState
from treadle.scheduler.service import schedules
from treadle.scheduler.store import Store
from treadle.scheduler.store.schedule_repo import FireRow
from treadle.testing import throwaway_postgres_database, throwaway_rabbitmq_vhost
from treadle.testing.processes import (
    SCHEDULER_READY,
    WORKER_READY,
    ServiceProcess,
    stop_all,
    treadle_environment,
    wait_until,
)

pytestmark = [pytest.mark.services, pytest.mark.slow]

TREADLE = Path(sys.executable).parent / "treadle"
BEAT_READY = "beat: Starting..."

PACK = {
    "pack.yaml": """
        ref: beattest
        version: "1.0.0"
    """,
    "workflows/tick.yaml": """
        ref: beattest.tick
        parameters:
          who:
            type: string
            default: nobody
        tasks:
          - name: say
            action: core.echo
            input:
              message: >-
                {{ parameters.who }}|{{ system.schedule.name }}|{{ system.schedule.fire_time }}
        output_map:
          said: "{{ task.say.result.message }}"
        triggers:
          - type: interval
            interval: 2s
            name: declared-tick
            overlap: allow_all
            parameters: {who: declared}
    """,
}


@dataclass
class Deployment:
    database_url: str
    broker_url: str
    packs: Path
    logs: Path
    processes: list[ServiceProcess] = field(default_factory=list)
    store: Store | None = None

    def env(self) -> dict[str, str]:
        return treadle_environment(
            database_url=self.database_url,
            broker_url=self.broker_url,
            pack_paths=[str(self.packs)],
            log_level="INFO",
            beat_reload_seconds=1,
            schedule_late_after_seconds=3,
        )

    def start(self, name: str, *args: str) -> ServiceProcess:
        log = self.logs / f"{name}-{uuid.uuid4().hex[:6]}.log"
        process = ServiceProcess(name, list(args), self.env(), log)
        self.processes.append(process)
        return process

    def beat(self) -> ServiceProcess:
        process = self.start("beat", "beat")
        process.wait_for_log(BEAT_READY, 60)
        return process

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(TREADLE), *args],
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def fires(self, name: str) -> list[FireRow]:
        assert self.store is not None
        with self.store.snapshot() as uow:
            row = uow.schedule("default", name)  # None until beat read a declared one
            return [] if row is None else uow.fires(row.id, newest_first=False, limit=10_000)

    def runs_of(self, name: str) -> dict[str, str]:
        """``{run id: fire time}`` of every run whose context names schedule ``name``."""
        assert self.store is not None
        with self.store.engine.connect() as connection:
            rows = connection.execute(
                text(
                    "SELECT id, context->'schedule'->>'fire_time' AS fired FROM runs "
                    "WHERE context->'schedule'->>'name' = :name"
                ),
                {"name": name},
            ).all()
        return {row.id: row.fired for row in rows}

    def run(self, run_id: str) -> RunState:
        assert self.store is not None
        with self.store.snapshot() as uow:
            return uow.load_run(run_id)

    def create(self, name: str, **fields: Any) -> None:
        assert self.store is not None
        given = schedules.ScheduleInput(name=name, workflow="beattest.tick", **fields)
        with self.store.unit_of_work() as uow:
            schedules.create(
                uow, given, workspace="default", created_by="test", now=datetime.now(UTC)
            )

    def pause(self, name: str) -> None:
        assert self.store is not None
        with self.store.unit_of_work() as uow:
            schedules.pause(uow, name, workspace="default", now=datetime.now(UTC))


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    packs = tmp_path_factory.mktemp("packs")
    for relative, content in PACK.items():
        path = packs / "beattest" / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(content).lstrip())
    with ExitStack() as stack:
        database_url = stack.enter_context(throwaway_postgres_database("treadle_beat"))
        broker_url = stack.enter_context(throwaway_rabbitmq_vhost("treadle_beat"))
        made = Deployment(database_url, broker_url, packs, tmp_path_factory.mktemp("logs"))
        try:
            scheduler = made.start("scheduler", "scheduler")
            worker = made.start("worker", "worker", "--concurrency", "2", "--loglevel", "INFO")
            scheduler.wait_for_log(SCHEDULER_READY, 60)
            worker.wait_for_log(WORKER_READY, 60)
            made.store = Store.open(database_url, migrate=False)
            yield made
        finally:
            stop_all(made.processes)
            if made.store is not None:
                made.store.close()


def assert_each_fire_once(deployment: Deployment, name: str) -> list[FireRow]:
    """Fires of ``name`` form an unbroken series of nominal times, each recorded once,
    each started fire with exactly one run (and no run without its fire)."""
    fires = deployment.fires(name)
    nominals = [f.nominal_at for f in fires]
    assert nominals == sorted(set(nominals))
    started = {f.run_id: iso(f.nominal_at) for f in fires if f.status == "started"}
    assert deployment.runs_of(name) == started  # one run per started fire, none more
    return fires


def test_a_declared_schedule_fires_and_its_runs_see_system_schedule(
    deployment: Deployment,
) -> None:
    beat = deployment.beat()
    try:
        fires = wait_until(
            lambda: [f for f in deployment.fires("declared-tick") if f.run_id][2:],
            30,
            "three fires of the declared schedule",
        )
        run_id = fires[0].run_id
        assert run_id is not None
        wait_until(lambda: deployment.run(run_id).status.is_terminal, 30, "the run ending")
        state = deployment.run(run_id)
        assert state.status.value == "succeeded"
        assert state.output == {"said": f"declared|declared-tick|{iso(fires[0].nominal_at)}"}

        # created through the CLI while beat runs: seen within 5 seconds
        created_at = time.monotonic()
        done = deployment.cli(
            "schedules", "create", "from-cli", "--workflow", "beattest.tick",
            "--interval", "1s", "--overlap", "allow_all", "-p", "who=cli",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        wait_until(lambda: deployment.fires("from-cli"), 10, "the CLI schedule's first fire")
        assert time.monotonic() - created_at < 5 + 3  # 5 s, plus the command's own start-up
        done = deployment.cli("schedules", "pause", "from-cli")
        assert done.returncode == 0, done.stderr
        time.sleep(2.5)  # a real beat ticking: fires come due while paused
        assert "skipped_paused" in [f.status for f in deployment.fires("from-cli")]
        listed = deployment.cli("schedules", "fires", "from-cli")
        assert "skipped_paused" in listed.stdout
    finally:
        beat.terminate()
    assert beat.returncode == 0
    assert_each_fire_once(deployment, "declared-tick")
    assert_each_fire_once(deployment, "from-cli")
    deployment.pause("declared-tick")


def test_two_beats_record_each_fire_once(deployment: Deployment) -> None:
    deployment.create("twice", interval=timedelta(seconds=1), overlap="allow_all")
    first, second = deployment.beat(), deployment.beat()
    try:
        wait_until(lambda: len(deployment.fires("twice")) >= 8, 30, "eight fires")
    finally:
        stop_all([first, second])
    deployment.pause("twice")
    fires = assert_each_fire_once(deployment, "twice")
    assert len(fires) >= 8
    assert [f.nominal_at for f in fires] == [
        fires[0].nominal_at + timedelta(seconds=i) for i in range(len(fires))
    ]  # none lost between them
    assert all(f.status == "started" for f in fires)
    runs = {f.run_id for f in fires}
    print(f"fire accounting with two beats: {len(fires)} fires, {len(runs)} runs")


def test_a_killed_beat_catches_up_by_policy_when_restarted(deployment: Deployment) -> None:
    deployment.create("every", interval=timedelta(seconds=1), overlap="allow_all", missed="all")
    deployment.create("newest", interval=timedelta(seconds=1), overlap="allow_all", missed="last")
    beat = deployment.beat()
    wait_until(lambda: len(deployment.fires("every")) >= 2, 30, "beat firing")
    beat.kill()  # SIGKILL: no goodbye
    killed_at = datetime.now(UTC)
    # Fires come due while no beat runs: those due more than 3 s (late_after) before the
    # restarted beat's first look are late. 8 s leaves at least four of them whatever the
    # phase of the kill and however fast the beat starts (with 6 s, a fast start and a
    # kill just after a fire left three, and only two skipped).
    time.sleep(8)
    restarted = deployment.beat()
    restart_after = killed_at + timedelta(seconds=10)

    def both_fired_again() -> bool:
        # Both, not just "every": its backlog is fired first (longest overdue first), and on
        # a slow machine that took until past restart_after, before "newest" had its turn.
        return all(
            any(f.nominal_at > restart_after for f in deployment.fires(name))
            for name in ("every", "newest")
        )

    try:
        wait_until(both_fired_again, 30, "both schedules firing again after the restart")
    finally:
        restarted.terminate()
    deployment.pause("every")
    deployment.pause("newest")

    every = assert_each_fire_once(deployment, "every")
    assert [f.nominal_at for f in every] == [
        every[0].nominal_at + timedelta(seconds=i) for i in range(len(every))
    ]
    assert {f.status for f in every} == {"started"}  # missed 'all': every missed fire ran
    newest = assert_each_fire_once(deployment, "newest")
    assert [f.nominal_at for f in newest] == [
        newest[0].nominal_at + timedelta(seconds=i) for i in range(len(newest))
    ]
    missed = [f for f in newest if f.status == "skipped_missed"]
    print(f"fire accounting across SIGKILL: every={Counter(f.status for f in every)} "
          f"newest={Counter(f.status for f in newest)}")  # fmt: skip
    shown = [(f.nominal_at.time().isoformat(), f.status, f.recorded_at.time().isoformat())
             for f in newest]  # fmt: skip
    assert len(missed) >= 3, (killed_at, shown)  # the late ones but the newest: skipped
    assert {f.status for f in newest} <= {"started", "skipped_missed"}
