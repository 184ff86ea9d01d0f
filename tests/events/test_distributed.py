"""Events, inquiries, governance and notifications with the services running.

One module-scoped deployment: a throwaway PostgreSQL database and RabbitMQ vhost, a real
``treadle scheduler`` and a real ``treadle worker`` (both with the ``eventtest`` pack).
The commands under test (``treadle events send --distributed``, ``treadle inquiry ...
--distributed``) and the client only write through the database; the services do the rest.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import socket
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from treadle.client import Client, RunInfo
from treadle.common.errors import ConflictError, ParameterError
from treadle.common.statuses import RunStatus
from treadle.testing.deployment import running_services
from treadle.testing.processes import (
    ServiceProcess,
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

    def pending_inquiry(self, run_id: str, timeout: float = 30, *, task: str | None = None) -> Any:
        def asked() -> Any:
            pending = self.client.get(run_id).pending_inquiries
            pending = [i for i in pending if task is None or i.task == task]
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
        running = stack.enter_context(running_services("events", logs, [TEST_PACKS]))
        # the client in this process stores secret parameters: it needs the services' key
        key = running.environment["TREADLE_SECRET_KEY"]
        stack.enter_context(pytest.MonkeyPatch.context()).setenv("TREADLE_SECRET_KEY", key)
        client = stack.enter_context(
            Client(running.database_url, identity={"login": "ada", "via": "client"})
        )
        cli = make_cli(logs, {"TREADLE_DATABASE_URL": running.database_url})
        yield Services(running.database_url, running.environment, running.processes, client, cli)


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


def test_a_trigger_starts_one_run_per_event_id(services: Services, run_started_by: Any) -> None:
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
    assert run_started_by(services.client.store, "d-evt-1", "eventtest.intake") == run_id


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


def test_inquiries_record_their_assignee_and_answers_that_do_not_fit_change_nothing(
    services: Services,
) -> None:
    treadle, client = services.cli, services.client
    login = getpass.getuser()
    run_id = client.start("eventtest.assigned", {"team": "web"})
    asked = services.pending_inquiry(run_id)
    assert (asked.task, asked.assigned_to) == ("confirm", "web-oncall")
    shown = treadle("inquiry", "show", asked.id, "--distributed", code=0).json()
    assert shown == {
        "id": asked.id,
        "run": run_id,
        "task": "confirm",
        "status": "pending",
        "prompt": "Confirm the change for web?",
        "schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]},
        "assigned_to": "web-oncall",
        "deadline": None,
        "response": None,
        "responder": None,
        "purpose": "task",
    }
    version = services.version(run_id)

    refused = treadle(
        "inquiry", "respond", asked.id, "--data", '{"ok": "sure"}', "--distributed", code=2
    )
    with pytest.raises(ParameterError) as caught:
        client.respond(asked.id, {"ok": "sure"})

    assert refused.stderr.splitlines() == [
        "error: the answer does not fit the inquiry's schema:",
        "  response['ok']: 'sure' is not of type 'boolean'",
    ]
    assert caught.value.problems == ("response['ok']: 'sure' is not of type 'boolean'",)
    assert treadle("inquiry", "show", asked.id, "--distributed", code=0).json() == shown
    assert services.version(run_id) == version

    answered = treadle(
        "inquiry", "respond", asked.id, "--data", '{"ok": true}', "--distributed", "--json",
        code=0,
    ).json()  # fmt: skip
    assert (answered["status"], answered["response"], answered["responder"]) == (
        "answered",
        {"ok": True},
        login,
    )
    second = services.pending_inquiry(run_id, task="ship")  # the wait_for inquiry
    assert second.assigned_to == "web-lead"
    with pytest.raises(ParameterError, match="should be non-empty"):
        client.respond(second.id, {"who": ""})
    client.respond(second.id, {"who": "ann"}, responder="bob")

    assert services.wait_for(run_id).output == {"said": "shipped by ann"}
    listed = treadle(
        "inquiry", "list", "--status", "all", "--run", run_id, "--distributed", "--json", code=0
    ).json()
    assert [(i["task"], i["assigned_to"], i["status"], i["responder"]) for i in listed] == [
        ("confirm", "web-oncall", "answered", login),
        ("ship", "web-lead", "answered", "bob"),
    ]


def test_an_inquiry_whose_schema_is_not_a_json_schema_refuses_answers(
    services: Services,
) -> None:
    treadle, client = services.cli, services.client
    run_id = client.start("eventtest.broken_schema")
    asked = services.pending_inquiry(run_id)
    version = services.version(run_id)

    refused = treadle("inquiry", "respond", asked.id, "--data", "{}", "--distributed", code=2)
    with pytest.raises(ConflictError, match="cannot be answered"):
        client.respond(asked.id, {})

    assert refused.stderr == (
        f"error: inquiry {asked.id} cannot be answered: its schema is not a valid JSON "
        "Schema (schema['type']: 'objekt' is not valid under any of the given schemas); "
        f"fix the workflow, and cancel run {run_id}\n"
    )
    assert services.version(run_id) == version
    assert [i.id for i in client.get(run_id).pending_inquiries] == [asked.id]
    assert client.cancel(run_id).status is RunStatus.CANCELED


#: demo.pinned in two versions (tests/data/versions)
VERSIONS = Path(__file__).resolve().parents[1] / "data" / "versions"
PINNED = (VERSIONS / "pinned_v1.yaml").read_text(encoding="utf-8")
PINNED_V2 = (VERSIONS / "pinned_v2.yaml").read_text(encoding="utf-8")


def test_a_run_keeps_its_version_when_a_newer_one_is_published_mid_run(
    services: Services, tmp_path: Path
) -> None:
    treadle, client = services.cli, services.client
    flow = tmp_path / "pinned.yaml"
    flow.write_text(PINNED, encoding="utf-8")
    assert treadle("workflows", "register", flow, code=0).stdout == "demo.pinned v1 (new)\n"
    old = client.start("demo.pinned")
    asked = services.pending_inquiry(old)  # the run is half way through version 1

    flow.write_text(PINNED_V2, encoding="utf-8")
    assert treadle("workflows", "register", flow, code=0).stdout == "demo.pinned v2 (new)\n"
    new = client.start("demo.pinned")
    versions = treadle("workflows", "versions", "demo.pinned", "--json", code=0).json()
    assert [(v["version"], v["runs"], v["author"]) for v in versions] == [
        (1, 1, getpass.getuser()),
        (2, 1, getpass.getuser()),
    ]
    diff = treadle("workflows", "diff", "demo.pinned", code=0).stdout
    assert "-    message: v1 last\n+    message: v2 last\n+- name: extra\n" in diff

    treadle("inquiry", "respond", asked.id, "--data", '{"go": true}', "--distributed", code=0)
    finished = services.wait_for(old)
    assert finished.version == 1
    assert [t.name for t in finished.tasks] == ["first", "gate", "last"]
    assert finished.output == {"said": "v1 last"}

    client.respond(services.pending_inquiry(new).id, {"go": True})
    finished_new = services.wait_for(new)
    assert finished_new.version == 2
    assert [t.name for t in finished_new.tasks] == ["first", "gate", "extra", "last"]
    assert finished_new.output == {"said": "v2 last"}


def test_the_scheduler_names_itself_as_the_author_of_what_it_publishes(services: Services) -> None:
    versions = services.cli("workflows", "versions", "eventtest.assigned", "--json", code=0).json()
    author = f"treadle scheduler ({getpass.getuser()}@{socket.gethostname()})"
    assert [(v["version"], v["author"]) for v in versions] == [(1, author)]
