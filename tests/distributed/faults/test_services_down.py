"""The database or the broker is down when the services start, and comes up later.

A :class:`~.conftest.PortForwarder` stands for the server: its port refuses connections
until the test opens it, then forwards them to the real PostgreSQL or RabbitMQ. The
services must wait (retrying with backoff and saying why), stop cleanly on SIGTERM while
waiting, and carry on by themselves once the server answers; a client must fail fast.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from functools import partial

import pytest
from sqlalchemy.engine import make_url

from treadle.client import Client
from treadle.common.errors import ServiceUnavailable
from treadle.testing.processes import ServiceProcess, wait_until

from .conftest import Deployment, PortForwarder

pytestmark = [pytest.mark.services, pytest.mark.slow]

Forwarder = Callable[[tuple[str, int]], PortForwarder]


@pytest.fixture(scope="module")
def deployment(module_deployment_factory: Callable[..., Deployment]) -> Deployment:
    return module_deployment_factory()


@pytest.fixture
def services(deployment: Deployment) -> Iterator[Deployment]:
    with deployment.test_scope():
        yield deployment


def retry_pauses(lines: list[str]) -> list[float]:
    return [
        float(m.group(1)) for line in lines if (m := re.search(r"retrying in ([\d.]+) s", line))
    ]


def test_a_database_down_at_start_is_waited_for_and_a_client_fails_fast(
    services: Deployment, forwarder: Forwarder
) -> None:
    url = make_url(services.database_url)
    down = forwarder((url.host or "127.0.0.1", url.port or 5432))
    database_url = url.set(port=down.port).render_as_string(hide_password=False)
    patient = services.scheduler("patient", database_url=database_url)
    quitter = services.scheduler("quitter", database_url=database_url)
    worker = services.worker()

    unreachable = f"database at 127.0.0.1:{down.port} unreachable: "

    def retried_twice(scheduler: ServiceProcess) -> bool:
        return len(retry_pauses(scheduler.lines_with(unreachable))) >= 2

    for scheduler in (patient, quitter):
        wait_until(
            partial(retried_twice, scheduler),
            30,
            f"two retries logged by {scheduler.name}",
            describe=scheduler.tail,
        )
    first = patient.lines_with(unreachable)[0]
    assert "Connection refused" in first, first
    assert retry_pauses(patient.lines_with(unreachable))[:2] == [1.0, 2.0]  # backing off

    # A client does not hang on it: it says so within its connect timeout.
    began = time.monotonic()
    with (
        Client(database_url, connect_timeout=2) as client,
        pytest.raises(ServiceUnavailable) as caught,
    ):
        client.start("faults.nap")
    assert time.monotonic() - began < 2 + 1
    assert f"127.0.0.1:{down.port}" in str(caught.value)

    # SIGTERM while waiting: a clean exit.
    assert quitter.terminate() == 0, quitter.tail()
    assert quitter.logged("stopped (SIGTERM) before start-up finished")

    # The database comes up: the waiting scheduler starts by itself and serves runs.
    down.open()
    services.started(patient, worker)
    with services.client() as client:
        run_id = client.start("faults.chain")
    services.wait_for_runs([run_id], timeout=60)
    assert services.document(run_id)["status"] == "succeeded"
    assert patient.terminate() == 0, patient.tail()
    assert patient.logged("scheduler stopped")


def test_a_broker_down_at_start_is_waited_for_by_the_scheduler_and_the_worker(
    services: Deployment, forwarder: Forwarder
) -> None:
    vhost = services.broker_url.rsplit("/", 1)[1]
    down = forwarder(("127.0.0.1", 5672))
    broker_url = f"amqp://guest:guest@127.0.0.1:{down.port}/{vhost}"
    scheduler = services.scheduler(broker_url=broker_url)
    worker = services.worker(broker_url=broker_url)

    scheduler.wait_for_log(f"broker at 127.0.0.1:{down.port} unreachable: ")
    worker.wait_for_log(f"Cannot connect to amqp://guest:**@127.0.0.1:{down.port}/{vhost}: ")
    worker.wait_for_log("Trying again in")
    [line, *_] = scheduler.lines_with("unreachable: ")
    message = json.loads(line)["message"]  # the services log JSON lines to a pipe
    assert "refused" in message.lower(), line
    assert message.endswith("; retrying in 1 s"), line

    # Clients need only the database: the run is stored and waits for the services.
    with services.client() as client:
        run_id = client.start("faults.chain")
    assert not services.statuses([run_id])[run_id].is_terminal

    down.open()
    services.started(scheduler, worker)
    services.wait_for_runs([run_id], timeout=60)
    assert services.document(run_id)["status"] == "succeeded"
    assert scheduler.terminate() == 0, scheduler.tail()
    assert worker.terminate() == 0, worker.tail()
