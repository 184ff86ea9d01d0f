"""The whole path as users take it: ``treadle run --distributed``, and the same on Redis."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from treadle.testing import throwaway_redis_database
from treadle.testing.processes import TREADLE

from .conftest import (
    Deployment,
    assert_each_attempt_ran_once,
    base_settings,
    deployment,
)
from .faults_pack import CHAIN_STEPS

pytestmark = [pytest.mark.services, pytest.mark.slow]


def test_treadle_run_distributed_runs_on_the_services_and_prints_the_output(
    shared_deployment: Deployment, tmp_path: Path
) -> None:
    done = subprocess.run(
        [str(TREADLE), "run", "--distributed", "examples.hello_world", "--wait-timeout", "60"],
        env=shared_deployment.environment(),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {"greeting": "Hello, world!"}
    lines = done.stderr.splitlines()
    assert re.fullmatch(r"run (r-[0-9a-f]+) of examples\.hello_world", lines[0]), done.stderr
    assert re.fullmatch(r"run r-[0-9a-f]+ succeeded", lines[-1]), done.stderr
    run_id = lines[0].split()[1]
    [attempt] = shared_deployment.attempts(run_id)
    assert attempt.worker is not None
    assert attempt.worker.startswith("worker-")  # run by the real worker


@pytest.fixture
def redis_deployment(faults_packs: Path, tmp_path: Path) -> Iterator[Deployment]:
    with (
        throwaway_redis_database() as redis_url,
        deployment(tmp_path, broker_url=redis_url, **base_settings(faults_packs)) as made,
    ):
        yield made


def test_runs_complete_through_a_scheduler_and_a_worker_on_redis(
    redis_deployment: Deployment,
) -> None:
    services = redis_deployment
    services.started(services.scheduler(), services.worker(concurrency=2))
    assert "broker ready: consuming treadle.results" in services.processes[0].output()
    with services.client() as client:
        chain = client.start("faults.chain")
        fan_out = client.start("faults.fan_out", {"count": 10})
    services.wait_for_runs([chain, fan_out], timeout=60)

    assert services.document(chain)["status"] == "succeeded"
    assert services.document(chain)["output"] == {"last": CHAIN_STEPS[-1]}
    assert services.document(fan_out)["output"] == {"tags": [f"item {i}" for i in range(10)]}
    assert assert_each_attempt_ran_once(services, [chain, fan_out]) == len(CHAIN_STEPS) + 10
