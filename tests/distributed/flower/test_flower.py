"""``treadle flower`` for real: it shows Treadle's tasks as Flower shows any Celery task.

A fresh PostgreSQL database and RabbitMQ vhost (with a broker user of its own, so its
password can be looked for), a real ``treadle scheduler``, ``treadle worker`` and ``treadle
flower``, each stopped by pid. The worker sends no task events of its own
(``TREADLE_WORKER_SEND_TASK_EVENTS`` is off, the default): Flower's ``enable_events``
broadcast turns them on, which the worker logs. Then a run of ``examples.hello_world``
succeeds, and Flower's HTTP API (``/api/tasks``, ``/api/task/info/<id>``, behind basic
authentication) has its attempt, by the attempt id, as ``treadle.run.python`` in state
``SUCCESS`` on the worker's node name, its arguments naming the attempt but not the input;
searching Flower for the run id finds it.
The broker password appears neither in Flower's log, nor on its command line, nor in what
its API says about the worker.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from treadle.client import Client
from treadle.scheduler.store import Store
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

#: What ``treadle flower`` logs once it listens: the address, then the broker.
FLOWER_READY = re.compile(r"flower serving (http://127\.0\.0\.1:(\d+)/) on broker (\S+)")
#: What a Celery worker logs when a remote ``enable_events`` turns its task events on.
EVENTS_ENABLED = "Events of group {task} enabled by remote."
FLOWER_USER = ("ops", "flower-" + uuid.uuid4().hex[:8])


def rabbitmqctl(*args: str) -> None:
    tool = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    subprocess.run([tool, "-q", *args], check=True, capture_output=True, timeout=60)


@contextmanager
def broker_with_own_user() -> Iterator[tuple[str, str]]:
    """A throwaway vhost and a broker user of its own with a random password;
    yields ``(broker URL, password)``."""
    with throwaway_rabbitmq_vhost("treadle_flower") as guest_url:
        vhost = guest_url.rsplit("/", 1)[1]
        user, password = f"flower_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
        rabbitmqctl("add_user", user, password)
        try:
            rabbitmqctl("set_permissions", "-p", vhost, user, ".*", ".*", ".*")
            yield f"amqp://{user}:{password}@127.0.0.1:5672/{vhost}", password
        finally:
            rabbitmqctl("delete_user", user)


def flower_api(base: str, path: str, *, params: dict[str, str] | None = None) -> Any:
    response = httpx.get(f"{base}{path}", params=params, auth=FLOWER_USER, timeout=10)
    response.raise_for_status()
    return response.json()


def test_flower_shows_the_attempt_of_a_run_by_its_id_state_and_worker(tmp_path: Path):
    processes: list[ServiceProcess] = []
    with ExitStack() as stack:
        database_url = stack.enter_context(throwaway_postgres_database("treadle_flower"))
        broker_url, broker_password = stack.enter_context(broker_with_own_user())
        env = treadle_environment(
            database_url=database_url, broker_url=broker_url, log_level="INFO"
        )
        stack.callback(stop_all, processes)

        def start(name: str, *args: str) -> ServiceProcess:
            process = ServiceProcess(name, args, env, tmp_path / f"{name}.log")
            processes.append(process)
            return process

        worker_name = f"flower-{uuid.uuid4().hex[:6]}@{socket.gethostname()}"
        scheduler = start("scheduler", "scheduler")
        worker = start("worker", "worker", "--hostname", worker_name, "--concurrency", "1")
        flower = start("flower", "flower", "--port", "0", "--basic-auth", ":".join(FLOWER_USER))
        scheduler.wait_for_log(SCHEDULER_READY, 60)
        worker.wait_for_log(WORKER_READY, 60)
        flower.wait_for_log("flower serving", 60)
        ready = FLOWER_READY.search(flower.output())
        assert ready is not None, flower.tail()
        base, broker_shown = ready.group(1).rstrip("/"), ready.group(3)

        # Treadle's worker takes Flower's `enable_events` broadcast (sent every 5 s).
        worker.wait_for_log(EVENTS_ENABLED, 30)

        with Client(database_url) as client:
            run_id = client.start("examples.hello_world", {"name": "Ada-not-for-flower"})
            info = client.wait(run_id, timeout=60)
        assert info.succeeded, info
        with ExitStack() as closing:
            store = Store.open(database_url, migrate=False)
            closing.callback(store.close)
            with store.unit_of_work() as uow:
                (attempt,) = uow.list_attempts(run_id)
        assert attempt.worker == worker_name  # what Treadle recorded

        def listed() -> dict[str, Any] | None:
            tasks = flower_api(base, "/api/tasks", params={"workername": worker_name})
            task = tasks.get(attempt.attempt_id)
            return task if task is not None and task["state"] == "SUCCESS" else None

        wait_until(
            listed,
            30,
            f"Flower listing attempt {attempt.attempt_id} as SUCCESS",
            describe=lambda: str(flower_api(base, "/api/tasks")),
            interval=0.2,
        )
        task = flower_api(base, f"/api/task/info/{attempt.attempt_id}")
        searched = flower_api(base, "/api/tasks", params={"search": run_id})

        assert task["uuid"] == attempt.attempt_id
        assert task["name"] == "treadle.run.python"  # core.echo is a Python action
        assert task["state"] == "SUCCESS"
        assert task["worker"] == worker_name
        assert task["received"] is not None
        assert task["started"] is not None
        assert f"core.echo attempt {attempt.attempt_id}: input not shown" in task["args"]
        assert "Ada-not-for-flower" not in str(task)
        assert list(searched) == [attempt.attempt_id]  # a run's attempts, by its id

        # Without credentials Flower's API refuses to answer.
        anonymous = httpx.get(f"{base}/api/tasks", timeout=10)
        assert anonymous.status_code == 401

        # The broker password is nowhere Flower shows or logs it.
        assert broker_shown.startswith("amqp://")
        assert ":**@127.0.0.1:5672/" in broker_shown
        cmdline = Path(f"/proc/{flower.pid}/cmdline").read_bytes().decode()
        workers = httpx.get(f"{base}/api/workers?refresh=1", auth=FLOWER_USER, timeout=30)
        assert workers.status_code == 200
        assert worker_name in workers.json()
        for where, text in (
            ("flower's log", flower.output()),
            ("flower's command line", cmdline),
            ("flower's /api/workers", workers.text),
        ):
            assert broker_password not in text, where

        assert flower.terminate() == 0, flower.tail()
        assert "flower stopped (SIGTERM)" in flower.output()
