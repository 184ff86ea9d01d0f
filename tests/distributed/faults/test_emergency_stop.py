"""The emergency stop with two ``treadle scheduler`` processes and a worker (PostgreSQL and
RabbitMQ), turned on and off with ``treadle emergency-stop`` as an operator would.

While it holds: attempts waiting on the broker are taken back (never run), the running one
finishes, runs pause, a run started meanwhile never reaches the worker, and the stop
outlives a scheduler's restart; lifted, the runs it paused go on to succeed (each step once)
and a run an operator paused stays paused. With ``--terminate`` the running attempt is
killed and runs again after the stop. Each rule on its own: ``tests/store/test_emergency_stop.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from treadle.common.statuses import AttemptStatus, RunStatus
from treadle.testing.cli import TreadleCli
from treadle.testing.processes import wait_until

from .conftest import Deployment

# Real processes (two schedulers and a worker start in seconds): slow.
pytestmark = [pytest.mark.services, pytest.mark.slow]


def treadle(services: Deployment, *args: str) -> str:
    """``treadle ARGS`` on the deployment, as an operator runs it (the same app, in this
    interpreter); its output (exit 0)."""
    cli = TreadleCli(services.logs, services.environment(), in_process=True)
    return cli(*args, code=0).stdout


def attempts(services: Deployment, run_id: str) -> list[tuple[str, AttemptStatus, str | None]]:
    return [(a.action_ref, a.status, a.reason) for a in services.attempts(run_id)]


def wait_for(services: Deployment, wanted: dict[str, RunStatus], timeout: float = 30) -> None:
    wait_until(
        lambda: services.statuses(wanted) == wanted,
        timeout,
        f"runs {wanted}",
        describe=lambda: f"statuses {services.statuses(wanted)}",
        interval=0.1,
    )


def running(services: Deployment, run_id: str) -> bool:
    return any(a.status is AttemptStatus.RUNNING for a in services.attempts(run_id))


def test_emergency_stop_with_two_schedulers_and_a_worker(
    module_deployment_factory: Callable[..., Deployment],
) -> None:
    services = module_deployment_factory()
    one, two = services.scheduler("one"), services.scheduler("two")
    worker = services.worker(concurrency=1)
    services.started(one, two, worker)
    with services.client() as client:
        busy = client.start("faults.nap", {"seconds": 3})  # it takes the only worker slot
        wait_until(lambda: running(services, busy), 30, "the nap running")
        waiting = [client.start("faults.chain") for _ in range(2)]  # queued behind it
        theirs = client.start("faults.chain")
        client.pause(theirs, reason="an operator looks at it")
        wait_until(
            lambda: all(services.count_attempts([r], "queued") for r in waiting),
            30,
            "the waiting runs' first steps queued on the broker",
        )

        said = treadle(services, "emergency-stop", "on", "--reason", "bad deploy")
        assert said.startswith("emergency stop (global) since")
        three = services.scheduler("three")  # ready later on
        paused = dict.fromkeys([*waiting, theirs], RunStatus.PAUSED)
        wait_for(services, paused)
        for run_id in waiting:  # taken back: never run; each runs again after the stop
            [taken] = services.attempts(run_id)
            assert (taken.status, taken.reason) == (
                AttemptStatus.LOST,
                "emergency_stop: taken back from the broker (global)",
            )
            dropped = f"Discarding revoked task: treadle.run.python[{taken.attempt_id}]"
            worker.wait_for_log(dropped, 30)
        wait_for(services, {busy: RunStatus.SUCCEEDED})  # its running attempt finished

        why = services.document(waiting[0])["why"]
        assert [r["reason"] for r in why] == ["emergency_stop"]
        assert "held by the emergency stop (global) since" in why[0]["message"]
        assert why[0]["message"].endswith(": bad deploy")

        one.terminate()  # the stop outlives a scheduler: one started after it holds it too
        services.started(three)
        late = client.start("faults.chain")
        wait_for(services, {late: RunStatus.PAUSED})
        assert all(a[1] is not AttemptStatus.SUCCEEDED for a in attempts(services, late))
        assert "global" in treadle(services, "emergency-stop", "status")

        treadle(services, "emergency-stop", "off", "--reason", "rolled back")
        resumed = [*waiting, late]
        services.wait_for_runs(resumed, timeout=60)
        assert services.statuses(resumed) == dict.fromkeys(resumed, RunStatus.SUCCEEDED)
        assert services.statuses([theirs]) == {theirs: RunStatus.PAUSED}  # the operator's

    for run_id in resumed:  # every step succeeded once; only taken-back attempts were lost
        ran = attempts(services, run_id)
        succeeded = [a for a in ran if a[1] is AttemptStatus.SUCCEEDED]
        assert len(succeeded) == 10
        assert all(a[1] is AttemptStatus.LOST for a in ran if a not in succeeded)
    for process in (two, three):
        assert process.running, process.tail()
        assert "Traceback" not in process.output(), process.tail()


def test_a_terminating_stop_kills_the_running_attempt_which_runs_again_after_it(
    module_deployment_factory: Callable[..., Deployment], tmp_path: Path
) -> None:
    services = module_deployment_factory()
    scheduler, worker = services.scheduler(), services.worker(concurrency=1)
    services.started(scheduler, worker)
    marker = tmp_path / "napped"
    params: dict[str, Any] = {"customer": "c1", "marker": str(marker), "seconds": 60}
    with services.client() as client:
        run_id = client.start("faults.keyed_nap", params)
        wait_until(lambda: running(services, run_id), 30, "the nap running")

        treadle(services, "emergency-stop", "on", "--reason", "runaway", "--terminate")
        wait_for(services, {run_id: RunStatus.PAUSED})
        [(_, status, reason)] = attempts(services, run_id)
        assert (status, reason) == (AttemptStatus.LOST, "emergency_stop: terminated (global)")

        treadle(services, "emergency-stop", "off")
        services.wait_for_runs([run_id], timeout=30)  # far sooner than the 60 s nap
    document = services.document(run_id)
    assert document["status"] == "succeeded", document
    [nap] = document["tasks"]
    assert nap["result"] == {"napped": False}  # the second attempt: the marker was there
    assert worker.running, worker.tail()
