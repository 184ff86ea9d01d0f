"""Events, inquiries, governance and notifications with the services running.

One module-scoped deployment: a throwaway PostgreSQL database and RabbitMQ vhost, a real
``treadle scheduler`` and a real ``treadle worker`` (both with the ``eventtest`` pack).
The commands under test (``treadle events send --distributed``, ``treadle inquiry ...
--distributed``) and the client only write through the database; the services do the rest.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from treadle.client import Client, RunInfo
from treadle.common.statuses import RunStatus
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

TEST_PACKS = Path(__file__).resolve().parent / "packs"
REPLY = json.dumps({"replied": True})


@dataclass
class Services:
    """The deployment: its settings, its processes, a client and the command line."""

    database_url: str
    environment: dict[str, str]
    processes: list[ServiceProcess]
    client: Client
    cli: Any

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.tail(60)}" for p in self.processes)

    def wait_for(self, run_id: str, *statuses: RunStatus, timeout: float = 30) -> RunInfo:
        wanted = statuses or (RunStatus.SUCCEEDED,)

        def reached() -> RunInfo | None:
            info = self.client.get(run_id)
            return info if info.status in wanted else None

        return wait_until(
            reached,
            timeout,
            f"run {run_id} {'/'.join(s.value for s in wanted)}",
            describe=lambda: f"{self.client.get(run_id).status.value}\n{self.logs()}",
        )

    def pending_inquiry(self, run_id: str, timeout: float = 30) -> Any:
        def asked() -> Any:
            pending = self.client.get(run_id).pending_inquiries
            return pending[0] if pending else None

        return wait_until(asked, timeout, f"an inquiry of run {run_id}", describe=self.logs)

    def waits(self, run_id: str) -> list[Any]:
        with self.client.store.unit_of_work() as uow:
            return uow.list_event_waits(run_id=run_id)

    def version(self, run_id: str) -> int | None:
        with self.client.store.unit_of_work() as uow:
            return uow.run_version(run_id)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory, make_cli: Any) -> Iterator[Services]:
    logs = tmp_path_factory.mktemp("event-services")
    with ExitStack() as stack:
        database_url = stack.enter_context(throwaway_postgres_database("treadle_events"))
        broker_url = stack.enter_context(throwaway_rabbitmq_vhost("treadle_events"))
        environment = treadle_environment(
            database_url=database_url,
            broker_url=broker_url,
            pack_paths=[str(TEST_PACKS)],
            log_level="INFO",
        )
        processes: list[ServiceProcess] = []
        stack.callback(stop_all, processes)
        scheduler = ServiceProcess("scheduler", ["scheduler"], environment, logs / "scheduler.log")
        processes.append(scheduler)
        scheduler.wait_for_log(SCHEDULER_READY, 60)  # it creates the schema and publishes
        name = f"events-{uuid.uuid4().hex[:6]}@%h"
        worker = ServiceProcess(
            "worker",
            ["worker", "--hostname", name, "--concurrency", "2", "--loglevel", "INFO"],
            environment,
            logs / "worker.log",
        )
        processes.append(worker)
        worker.wait_for_log(WORKER_READY, 60)
        client = stack.enter_context(
            Client(database_url, identity={"login": "ada", "via": "client"})
        )
        cli = make_cli(logs, {"TREADLE_DATABASE_URL": database_url})
        yield Services(database_url, environment, processes, client, cli)


def test_inquiry_and_event_wait_through_the_services(services: Services) -> None:
    treadle, client = services.cli, services.client
    run_id = client.start("eventtest.gated_wait", {"contact": "d-1"})
    inquiry = services.pending_inquiry(run_id)
    assert inquiry.assigned_to == "sdr-team"

    early = treadle(
        "events", "send", "mail.received", "--subject", "contacts/d-1", "--data", REPLY,
        "--id", "d-early", "--distributed", code=0,
    )  # fmt: skip
    assert early.json()["updated_runs"] == []
    listed = treadle("inquiry", "list", "--distributed", "--json", code=0).json()
    assert [(i["id"], i["assigned_to"]) for i in listed] == [(inquiry.id, "sdr-team")]

    version = services.version(run_id)
    refused = treadle(
        "inquiry", "respond", inquiry.id, "--data", '{"go": "yes"}', "--distributed", code=2
    )
    assert "response['go']: 'yes' is not of type 'boolean'" in refused.stderr
    assert services.version(run_id) == version
    assert [i.id for i in client.get(run_id).pending_inquiries] == [inquiry.id]

    answered = treadle(
        "inquiry", "respond", inquiry.id, "--data", '{"go": true}', "--distributed", "--json",
        code=0,
    )  # fmt: skip
    assert answered.json()["status"] == "answered"
    assert answered.json()["responder"]
    wait_until(lambda: services.waits(run_id), 30, "the event wait", describe=services.logs)

    duplicate = client.send_event(
        "mail.received", subject="contacts/d-1", data={"replied": True}, event_id="d-early"
    )
    assert duplicate.duplicate is True
    assert client.get(run_id).status is RunStatus.RUNNING
    late = treadle(
        "events", "send", "mail.received", "--subject", "contacts/d-1", "--data", REPLY,
        "--id", "d-late", "--distributed", code=0,
    )  # fmt: skip
    assert late.json()["updated_runs"] == [run_id]

    info = services.wait_for(run_id)
    assert info.output["reply"]["id"] == "d-late"
    assert services.waits(run_id) == []


def test_a_trigger_starts_one_run_per_event_id(services: Services) -> None:
    data = {"contact_id": "contact_9", "company": "Initech", "email": "x@initech.example"}
    first = services.client.send_event(
        "contact.created", subject="crm.contact", data=data, event_id="d-evt-1"
    )
    again = services.cli(
        "events", "send", "contact.created", "--subject", "crm.contact",
        "--data", json.dumps(data), "--id", "d-evt-1", "--distributed", code=0,
    )  # fmt: skip

    [run_id] = first.started_runs
    assert again.json()["duplicate"] is True
    info = services.wait_for(run_id)
    assert info.parameters == {"contact_id": "contact_9", "company": "Initech", "source": "d-evt-1"}
    assert info.output == {"said": "contact_9 at Initech", "source": "d-evt-1"}
    with services.client.store.unit_of_work() as uow:
        assert uow.find_run_by_trigger("d-evt-1", "eventtest.intake") == run_id


def test_governance_allow_require_approval_and_deny(services: Services) -> None:
    client = services.client
    allowed = client.start("eventtest.governed", {"risk_level": "RISK_LEVEL_LOW"})
    approved = client.start("eventtest.governed", {"risk_level": "RISK_LEVEL_HIGH"})
    rejected = client.start("eventtest.governed", {"risk_level": "RISK_LEVEL_HIGH"})
    denied = client.start("eventtest.pack_policy", {"amount": 5000})

    client.respond(services.pending_inquiry(approved).id, {"approved": True})
    client.respond(services.pending_inquiry(rejected).id, {"approved": False}, responder="bob")

    assert services.wait_for(allowed).output["deployed"] == "deployed"
    assert services.wait_for(approved).output["deployed"] == "deployed"
    failed = services.wait_for(rejected, RunStatus.FAILED)
    assert "deploy" not in [t.name for t in failed.tasks]
    pack_denied = services.wait_for(denied, RunStatus.FAILED)
    assert pack_denied.task("check").error["type"] == "PolicyDenied"


def test_notifications_from_a_worker(
    services: Services, webhook: Any, unreachable_url: str
) -> None:
    secret = "worker-side-secret"
    run_id = services.client.start(
        "eventtest.notify_all",
        {"url": webhook.url, "unreachable": unreachable_url, "secret": secret},
    )

    info = services.wait_for(run_id)

    assert info.output["hook"] == {"delivered": True, "channel": "webhook", "status_code": 200}
    assert info.output["nowhere"]["delivered"] is False
    [request] = webhook.received
    expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-treadle-signature"] == f"sha256={expected}"
    assert request.json()["run_id"] == run_id
    worker = services.processes[1]
    wait_until(
        lambda: worker.lines_with(f"notification (run {run_id} task to_log)"),
        10,
        "the log notification in the worker's log",
        describe=lambda: worker.tail(40),
    )
    assert secret not in worker.output()
