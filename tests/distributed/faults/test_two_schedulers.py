"""Two ``treadle scheduler`` processes on one database: they share the work, never repeat it."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from .conftest import Deployment, assert_each_attempt_ran_once
from .faults_pack import CHAIN_STEPS

pytestmark = [pytest.mark.services, pytest.mark.slow]

ITEMS = 200
CHAINS = 20


def test_two_schedulers_complete_a_large_fan_out_and_chains_doing_each_item_once(
    module_deployment_factory: Callable[..., Deployment],
) -> None:
    services = module_deployment_factory()
    schedulers = [services.scheduler("one"), services.scheduler("two")]  # started together
    services.started(*schedulers, services.worker(concurrency=4))
    with services.client() as client:
        fan_out = client.start("faults.fan_out", {"count": ITEMS})
        chains = [client.start("faults.chain") for _ in range(CHAINS)]
    runs = [fan_out, *chains]
    services.wait_for_runs(runs, timeout=90)

    document = services.document(fan_out, items=True)
    assert document["status"] == "succeeded", document
    assert document["output"] == {"tags": [f"item {i}" for i in range(ITEMS)]}
    [each] = document["tasks"]
    items = [(item["index"], item["status"], item["attempts"]) for item in each["items"]]
    assert items == [(i, "succeeded", 1) for i in range(ITEMS)]
    for run_id in chains:
        document = services.document(run_id)
        assert document["status"] == "succeeded", document
        ran = [(t["name"], t["status"], t["attempts"]) for t in document["tasks"]]
        assert ran == [(step, "succeeded", 1) for step in CHAIN_STEPS]
    assert assert_each_attempt_ran_once(services, runs) == ITEMS + CHAINS * len(CHAIN_STEPS)

    for scheduler in schedulers:
        assert scheduler.running, scheduler.tail()
        output = scheduler.output()
        assert "deadlock" not in output.lower(), scheduler.tail()
        assert "Traceback" not in output, scheduler.tail()
