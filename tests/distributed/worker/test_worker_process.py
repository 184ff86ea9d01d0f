"""``treadle worker`` as operators run it: a real prefork worker process on a throwaway vhost.

One worker is shared by the tests of this module that leave it running; tests that stop or
kill a worker start their own on a queue of their own. Every process is stopped by its pid
when its test (or the module) ends.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from treadle.common.settings import Settings
from treadle.common.statuses import AttemptStatus
from treadle.common.transport import WorkerState
from treadle.scheduler.service.celery_publisher import CeleryPublisher
from treadle.worker.app import create_celery_app

pytestmark = [pytest.mark.services, pytest.mark.slow]

CELERY = Path(sys.executable).parent / "celery"
SIGTERM_QUEUE = "sigterm.tasks"
RESCUE_QUEUE = "rescue.tasks"
PREFETCH_QUEUES = ("prefetch-default.tasks", "prefetch-nospare.tasks", "prefetch3.tasks")


@pytest.fixture(scope="module")
def settings(rabbitmq_url: str, test_packs: Path) -> Settings:
    return Settings(broker_url=rabbitmq_url, pack_paths=[str(test_packs)])


@pytest.fixture(scope="module")
def sender(settings: Settings) -> Any:
    """A Celery app that publishes dispatches the way the scheduler does."""
    app = create_celery_app(settings, queues=[SIGTERM_QUEUE, RESCUE_QUEUE, *PREFETCH_QUEUES])
    yield app
    app.close()


@pytest.fixture(scope="module")
def shared_worker(rabbitmq_url: str, test_packs: Path, module_worker_processes: Any) -> Any:
    # Started notices at once, so the tests see every delivery start; the default is
    # what the workers of test_the_task_of_a_killed_worker_runs_on_a_worker_started_afterwards run.
    worker = module_worker_processes(
        rabbitmq_url, "--concurrency", "1", "--pool", "prefork", "--pack-path", str(test_packs),
        worker_started_notice_after="0",
    )  # fmt: skip
    worker.wait_ready()
    return worker


def test_a_worker_process_runs_a_dispatch_and_reports_under_its_node_name(
    settings, sender, shared_worker, open_reports, make_dispatch, send_dispatch
):
    dispatch = make_dispatch("core.echo", {"message": "from a process"})
    with open_reports(settings) as reports:
        send_dispatch(sender, dispatch, settings.default_queue)
        started, finished = reports.wait_for(dispatch.attempt_id, 2)

    assert started.started is not None
    # --hostname w…@%h, expanded as Celery's own -n does; the name Flower shows
    assert started.started.worker == f"{shared_worker.name}@{socket.gethostname()}"
    assert started.started.worker == shared_worker.node()
    # which incarnation started it: the worker's main process (the prefork child reports)
    assert started.started.worker_pid == shared_worker.pid
    assert finished.result is not None
    assert finished.result.outcome is AttemptStatus.SUCCEEDED
    assert finished.result.result == {"message": "from a process"}


def test_celery_inspect_lists_the_real_task_names_of_a_running_worker(rabbitmq_url, shared_worker):
    env = {k: v for k, v in os.environ.items() if not k.startswith("TREADLE_")}
    env["TREADLE_BROKER_URL"] = rabbitmq_url
    done = subprocess.run(
        [str(CELERY), "-A", "treadle.worker.celery_app", "inspect", "registered",
         "--destination", shared_worker.node(), "--timeout", "10"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("treadle.run.python", "treadle.run.shell", "treadle.run.http"):
        assert name in done.stdout


def test_a_worker_tells_the_scheduler_its_pid_and_the_attempts_it_holds(
    settings, sender, shared_worker, open_reports, make_dispatch, send_dispatch
):
    publisher = CeleryPublisher.from_settings(settings)
    try:
        dispatch = make_dispatch("core.sleep", {"seconds": 3})
        with open_reports(settings) as reports:
            send_dispatch(sender, dispatch, settings.default_queue)
            reports.wait_for(dispatch.attempt_id, 1)  # started
            during = publisher.ping([shared_worker.node()], 5.0)
            reports.wait_for_result(dispatch.attempt_id)
        after = publisher.ping([shared_worker.node()], 5.0)
    finally:
        publisher.close()
    assert during == {
        shared_worker.node(): WorkerState(shared_worker.pid, frozenset({dispatch.attempt_id}))
    }
    assert after == {shared_worker.node(): WorkerState(shared_worker.pid, frozenset())}


def test_a_task_past_its_soft_time_limit_is_reported_timed_out(
    settings, sender, shared_worker, open_reports, make_dispatch, send_dispatch
):
    dispatch = make_dispatch("core.sleep", {"seconds": 30}, timeout_seconds=1)
    began = time.monotonic()
    with open_reports(settings) as reports:
        send_dispatch(sender, dispatch, settings.default_queue, soft_time_limit=1, time_limit=6)
        result = reports.wait_for_result(dispatch.attempt_id)

    assert time.monotonic() - began < 5
    assert result.outcome is AttemptStatus.TIMED_OUT
    assert result.error is not None
    assert result.error.type == "Timeout"
    assert result.error.message == (
        "action 'core.sleep' exceeded its timeout of 1 s (soft time limit)"
    )
    assert result.worker == shared_worker.node()


def test_a_task_that_ignores_the_soft_limit_is_killed_and_reported_timed_out(
    settings, sender, shared_worker, open_reports, make_dispatch, send_dispatch
):
    dispatch = make_dispatch("wtest.stubborn", {"seconds": 30}, timeout_seconds=1)
    with open_reports(settings) as reports:
        send_dispatch(sender, dispatch, settings.default_queue, soft_time_limit=1, time_limit=2)
        result = reports.wait_for_result(dispatch.attempt_id)

    assert result.outcome is AttemptStatus.TIMED_OUT
    assert result.error is not None
    assert result.error.type == "Timeout"
    assert "hard time limit" in result.error.message
    assert result.worker == shared_worker.node()


def test_a_killed_pool_process_gets_its_message_delivered_again(
    settings, sender, shared_worker, open_reports, make_dispatch, send_dispatch, wait, tmp_path
):
    pidfile = tmp_path / "pid"
    dispatch = make_dispatch(
        "wtest.crash_once", {"marker": str(tmp_path / "marker"), "pidfile": str(pidfile)}
    )
    with open_reports(settings) as reports:
        send_dispatch(sender, dispatch, settings.default_queue)
        reports.wait_for(dispatch.attempt_id, 1)
        pid = int(wait(lambda: pidfile.exists() and pidfile.read_text(), 10, "the action's pid"))
        assert pid != shared_worker.pid  # the pool child, not the worker's main process
        os.kill(pid, signal.SIGKILL)
        result = reports.wait_for_result(dispatch.attempt_id)

    kinds = [r.kind for r in reports.of(dispatch.attempt_id)]
    assert kinds == ["started", "started", "result"]  # acks_late + reject_on_worker_lost
    assert result.outcome is AttemptStatus.SUCCEEDED
    assert result.result == {"second_delivery": True}
    assert "WorkerLostError" in shared_worker.output()


def test_sigterm_lets_the_running_task_finish_then_exits_0(
    rabbitmq_url, settings, sender, worker_processes, open_reports, make_dispatch, send_dispatch,
    queue_counts, wait,
):  # fmt: skip
    worker = worker_processes(rabbitmq_url, "--concurrency", "1", "--queues", SIGTERM_QUEUE)
    worker.wait_ready()
    dispatch = make_dispatch("core.sleep", {"seconds": 1})
    with open_reports(settings) as reports:
        send_dispatch(sender, dispatch, SIGTERM_QUEUE)
        reports.wait_for(dispatch.attempt_id, 1)
        stopping = time.monotonic()
        worker.process.send_signal(signal.SIGTERM)
        result = reports.wait_for_result(dispatch.attempt_id)
        code = worker.process.wait(timeout=15)

    assert code == 0
    assert time.monotonic() - stopping < 8
    assert result.outcome is AttemptStatus.SUCCEEDED
    assert "Warm shutdown" in worker.output()
    wait(lambda: queue_counts(rabbitmq_url)[SIGTERM_QUEUE] == (0, 0), 10, "the ack")


def test_the_task_of_a_killed_worker_runs_on_a_worker_started_afterwards(
    rabbitmq_url, settings, sender, test_packs, worker_processes, open_reports, make_dispatch,
    send_dispatch, wait, tmp_path,
):  # fmt: skip
    pack = ("--pack-path", str(test_packs), "--queues", RESCUE_QUEUE, "--concurrency", "1")
    doomed = worker_processes(rabbitmq_url, *pack)
    doomed.wait_ready()
    pidfile = tmp_path / "pid"
    dispatch = make_dispatch(
        "wtest.crash_once", {"marker": str(tmp_path / "marker"), "pidfile": str(pidfile)}
    )
    with open_reports(settings) as reports:
        send_dispatch(sender, dispatch, RESCUE_QUEUE)
        reports.wait_for(dispatch.attempt_id, 1)
        wait(pidfile.exists, 10, "the action to start")
        doomed.kill()  # SIGKILL the worker and its pool: nothing acknowledges the message
        rescuer = worker_processes(rabbitmq_url, *pack)
        rescuer.wait_ready()
        result = reports.wait_for_result(dispatch.attempt_id)

    # The first delivery ran long enough to be announced (a quarter of a second by default);
    # the second returned at once, so its result alone says where it ran.
    started = [r.started.worker for r in reports.of(dispatch.attempt_id) if r.started]
    assert started == [doomed.node()]
    assert result.outcome is AttemptStatus.SUCCEEDED
    assert result.result == {"second_delivery": True}
    assert result.worker == rescuer.node()


def test_a_worker_keeps_retrying_an_unreachable_broker_and_says_why(worker_processes):
    worker = worker_processes("amqp://guest:guest@127.0.0.1:1//", "--concurrency", "1")
    worker.wait_for_log("Cannot connect to amqp://guest:**@127.0.0.1:1//")
    worker.wait_for_log("Trying again in")
    assert worker.process.poll() is None  # still retrying, not given up
    assert worker.terminate() == 0


@pytest.mark.parametrize(
    ("queue", "chosen", "held"),
    [
        (PREFETCH_QUEUES[0], {}, 2),
        (PREFETCH_QUEUES[1], {"worker_prefetch_spare": "0"}, 1),
        (PREFETCH_QUEUES[2], {"worker_prefetch_multiplier": "3", "worker_prefetch_spare": "0"}, 3),
    ],
)
def test_a_worker_process_holds_as_many_messages_as_its_prefetch_allows(
    rabbitmq_url, sender, test_packs, worker_processes, make_dispatch, send_dispatch,
    queue_counts, wait, queue, chosen, held,
):  # fmt: skip
    """By default a worker whose one process is busy with a long task holds one message
    more (TREADLE_WORKER_PREFETCH_SPARE), ready for when the process frees; with no spare
    it holds none another worker could run; TREADLE_WORKER_PREFETCH_MULTIPLIER raises the
    count per process."""
    worker = worker_processes(
        rabbitmq_url, "--pack-path", str(test_packs), "--queues", queue, "--concurrency", "1",
        **chosen,
    )  # fmt: skip
    worker.wait_ready()
    try:
        for _ in range(6):
            send_dispatch(sender, make_dispatch("core.sleep", {"seconds": 30}), queue)
        wait(
            lambda: queue_counts(rabbitmq_url).get(queue) == (6, held),
            15,
            f"the worker to hold {held} of the 6 messages",
        )
        assert queue_counts(rabbitmq_url).get(queue) == (6, held)  # and no more
    finally:
        worker.kill()  # the sleeping task need not finish
