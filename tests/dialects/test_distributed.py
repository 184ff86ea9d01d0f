"""Imported workflows/v1 definitions and AOS plans through the distributed services.

One module-scoped deployment: a throwaway PostgreSQL database and RabbitMQ vhost, a real
``treadle scheduler`` and a real ``treadle worker``, both with the stub pack on their pack
path. Everything a user does goes through the ``treadle`` command or the client, which
only write to the database: ``treadle import`` writes pack YAML, ``treadle workflows
register`` publishes it, events and answers arrive through the client, and ``treadle runs
show --format``, ``treadle runs golden`` and ``treadle golden verify`` read the runs back.
The services do the rest.

The conformance cases are the embedded ones (``test_v1_runs``, ``test_v1_events``,
``test_aos``, ``test_golden``), checked again here with the work done by the services.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from treadle.client import Client, RunInfo
from treadle.common.dialects import step_seed
from treadle.common.statuses import RunStatus
from treadle.scheduler.service.renderings import load_stored_run
from treadle.testing.cli import CliResult, TreadleCli
from treadle.testing.deployment import running_services
from treadle.testing.processes import (
    ServiceProcess,
    wait_until,
)

from .conftest import AOS, STUBS, V1, follow_up_version, intake_version, read_json

pytestmark = [pytest.mark.services, pytest.mark.slow]

SDR_EVENT = "evt_tap_hubspot_contact_created_acme"
REPLY = "siphon.tap.gmail.message.received"


@dataclass
class Services:
    """The deployment, a client on its database and the ``treadle`` command beside it."""

    environment: dict[str, str]
    processes: list[ServiceProcess]
    client: Client
    workdir: Path

    def treadle(self, *args: str | Path, code: int = 0) -> CliResult:
        return TreadleCli(self.workdir, self.environment)(*args, code=code)

    def show(self, run_id: str, format_: str = "workflows-v1") -> Any:
        """``treadle runs show ID --format ...``: the run in that dialect's shape."""
        return json.loads(self.treadle("runs", "show", run_id, "--format", format_).stdout)

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.tail(60)}" for p in self.processes)

    def wait_for(self, run_id: str, status: RunStatus = RunStatus.SUCCEEDED) -> RunInfo:
        def reached() -> RunInfo | None:
            info = self.client.get(run_id)
            return info if info.status is status else None

        return wait_until(
            reached,
            30,
            f"run {run_id} {status.value}",
            describe=lambda: f"{self.client.get(run_id).status.value}\n{self.logs()}",
        )

    def pending_inquiry(self, run_id: str) -> Any:
        def asked() -> Any:
            pending = self.client.get(run_id).pending_inquiries
            return pending[0] if pending else None

        return wait_until(asked, 30, f"an inquiry of run {run_id}", describe=self.logs)

    def event_wait(self, run_id: str) -> Any:
        def waiting() -> Any:
            with self.client.store.unit_of_work() as uow:
                return uow.list_event_waits(run_id=run_id)

        return wait_until(waiting, 30, f"an event wait of run {run_id}", describe=self.logs)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Services]:
    if not (V1.is_dir() and AOS.is_dir()):
        pytest.skip(f"conformance fixtures not found at {V1.parent}")
    workdir = tmp_path_factory.mktemp("dialect-services")
    with ExitStack() as stack:
        running = stack.enter_context(running_services("dialects", workdir, [STUBS]))
        client = stack.enter_context(
            Client(running.database_url, identity={"login": "dialect-tester", "via": "client"})
        )
        yield Services(running.environment, running.processes, client, workdir)


def states(run: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(s["step_id"], s["step_type"], s["state"]) for s in run["steps"]]


def test_the_sdr_pipeline_waits_for_approval_then_for_the_reply(services: Services) -> None:
    recorded = read_json(V1 / "get_run_response.json")["run"]
    services.treadle("import", V1 / "publish_version_response.json", "-o", "sdr.yaml")
    registered = services.treadle("workflows", "register", "sdr.yaml")
    assert "workflows_v1.wf_outbound_sdr v1 (new)" in registered.stdout

    # the webhook trigger starts the run from the recorded tap event
    outcome = services.client.send_event(
        "hubspot.contact.created", data=recorded["input_payload"], event_id=SDR_EVENT
    )
    [run_id] = outcome.started_runs
    inquiry = services.pending_inquiry(run_id)
    run = services.show(run_id)["run"]
    assert states(run) == states(recorded)
    assert (run["state"], run["trigger_event_id"], run["trigger_type"]) == (
        recorded["state"],
        recorded["trigger_event_id"],
        recorded["trigger_type"],
    )
    gate = run["steps"][4]
    assert (gate["step_id"], gate["approval_request_id"]) == ("approve-high-value", inquiry.id)

    services.client.respond(inquiry.id, {"approved": True, "comment": "go"})
    services.event_wait(run_id)
    run = services.show(run_id)["run"]
    assert [s["state"].removeprefix("STEP_RUN_STATE_") for s in run["steps"]] == [
        *["COMPLETED"] * 7,
        "WAITING",
    ]
    assert run["steps"][5]["output_payload"]["sent"] is True  # send-outreach ran on a worker

    reply = services.client.send_event(
        REPLY, subject=REPLY, data={"from": "jane.doe@acme.com"}, event_id="ev-reply"
    )
    assert reply.updated_runs == [run_id]
    services.wait_for(run_id)
    run = services.show(run_id)["run"]
    assert run["state"] == "WORKFLOW_STATE_COMPLETED"
    assert run["steps"][-1]["event_id"] == "ev-reply"


def test_an_event_starts_the_runs_it_triggers_and_releases_the_waits_on_it(
    services: Services,
) -> None:
    request = read_json(V1 / "handle_trigger_request.json")
    for name, text, extra in (
        ("intake.json", intake_version(),
         ["--map", "contact.research=company.research", "--parameter", "contact_id",
          "--parameter", "company"]),
        ("follow_up.json", follow_up_version(), []),
    ):  # fmt: skip
        (services.workdir / name).write_text(text, encoding="utf-8")
        services.treadle("import", name, *extra, "-o", name.replace(".json", ".yaml"))
    services.treadle("workflows", "register", "intake.yaml", "follow_up.yaml")

    tap = services.client.send_event(
        "hubspot.contact.created",
        data={"provider": "hubspot", "entity_type": "contact", "entity_id": "contact_123"},
        event_id="evt_tap_hubspot_contact_created_001",
    )
    [waiting] = tap.started_runs  # the SDR trigger's filter keeps this non-lead out
    assert services.client.get(waiting).workflow == "workflows_v1.wf_reply_follow_up"
    services.event_wait(waiting)

    outcome = services.client.send_event(
        request["event_type"],
        subject=request["event_subject"],
        data=request["input_payload"],
        event_id=request["trigger_event_id"],
    )
    [started] = outcome.started_runs
    assert outcome.updated_runs == [waiting]
    services.wait_for(started)
    services.wait_for(waiting)
    intake = services.show(started)["run"]
    assert (intake["definition_id"], intake["trigger_event_id"]) == (
        "wf_contact_intake",
        request["trigger_event_id"],
    )
    follow_up = services.show(waiting)["run"]
    assert [(s["step_id"], s["state"]) for s in follow_up["steps"]] == [
        ("wait-for-reply", "STEP_RUN_STATE_COMPLETED"),
        ("send-follow-up", "STEP_RUN_STATE_COMPLETED"),
    ]
    assert follow_up["steps"][0]["event_id"] == request["trigger_event_id"]


def test_an_aos_plan_runs_on_the_worker_with_its_step_seeds(services: Services) -> None:
    expected = read_json(AOS / "workflow_multi_skill.json")["expected_output"]
    services.treadle("import", AOS / "workflow_multi_skill.json", "-o", "plan.yaml")
    services.treadle("workflows", "register", "plan.yaml")
    run_id = services.client.start("aos.workflow_multi_skill")
    services.wait_for(run_id)

    result = services.show(run_id, "aos")
    assert result["status"] == expected["status"] == "ok"
    assert [(s["step_id"], s["skill"], s["ok"]) for s in result["steps"]] == [
        (s["step_id"], s["skill"], s["ok"]) for s in expected["steps"]
    ]
    assert result["steps"][2]["output"]["output"] == (
        "[stub-model] Summarize this email: jane.doe@example.com"
    )
    stored = load_stored_run(services.client.store, run_id)
    seed = stored.state.context.seed
    assert {c.dispatch.task: c.dispatch.input["seed"] for c in stored.dispatches.values()} == {
        name: step_seed(seed, name) for name in ("s1", "s2", "s3")
    }

    signing = {**services.environment, "TREADLE_GOLDEN_KEY": "distributed-golden-key-01"}
    golden = TreadleCli(services.workdir, signing)
    golden("runs", "golden", run_id, "--out", "golden.jsonl", code=0)
    verified = golden("golden", "verify", "golden.jsonl", code=0)
    assert verified.stdout.startswith("verified: signature ok")
