"""Every change an application makes with ``treadle.Client`` is in the audit log, on a real
PostgreSQL database: who (``client:<login>``), in which workspace, what, to what, and how
it ended, under the action names the HTTP API records. A change commits with its entry; a
refused or failed one records why and changes nothing.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from treadle import Client
from treadle.clientlib.audit import Change, audited, database_principal
from treadle.common.errors import ConflictError, NotFound, ParameterError
from treadle.common.loader import load_workflow_text
from treadle.common.settings import os_login
from treadle.common.spec import WorkflowSpec
from treadle.common.statuses import RunStatus
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.service.controls import ControlRefused
from treadle.scheduler.store import AuditRecord, Store

pytestmark = pytest.mark.services

ME = f"client:{os_login()}"

GREET = """\
ref: audit.greet
parameters:
  name: {type: string, required: true}
tasks:
  - name: say
    action: core.echo
    input: {message: "Hello, {{ parameters.name }}"}
"""

ASK = """\
ref: audit.ask
tasks:
  - name: approve
    action: core.ask
    input: {prompt: "ship it?", schema: {type: object, required: [ok]}}
"""


def workflow(text: str) -> WorkflowSpec:
    return load_workflow_text(textwrap.dedent(text), "<test>")


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    opened = Store.open(database_url, migrate=False)
    try:
        yield opened
    finally:
        opened.close()


def log(store: Store) -> list[AuditRecord]:
    """The audit log, oldest first, as ``treadle audit list`` reads it."""
    with store.snapshot() as uow:
        return list(reversed(uow.list_audit(workspace=None, limit=1000)))


def seen(store: Store) -> list[tuple[str, str | None, str]]:
    """What a reader of the log sees first: action, target, outcome."""
    return [(e.action, e.target, e.outcome.value) for e in log(store)]


def test_publishing_starting_and_every_control_are_recorded_as_the_client(
    client: Client, store: Store
) -> None:
    assert client.register(workflow(GREET)) == 1
    run_id = client.start("audit.greet", {"name": "Ada"}, idempotency_key="k-1")
    client.pause(run_id, reason="lunch")
    with pytest.raises(ControlRefused):
        client.pause(run_id)  # pausing already
    client.resume(run_id)
    client.cancel(run_id, reason="wrong order")
    client.retry(run_id)
    client.compensate(run_id)
    client.cancel(run_id)  # refused (compensating): Client.cancel returns the run as it is
    with pytest.raises(NotFound):
        client.start("audit.nothing")
    with pytest.raises(ParameterError):
        client.start("audit.greet", {"name": 42})

    assert seen(store) == [
        ("workflow.publish", "audit.greet", "ok"),
        ("run.start", "audit.greet", "ok"),
        ("run.pause", run_id, "ok"),
        ("run.pause", run_id, "refused"),
        ("run.resume", run_id, "ok"),
        ("run.cancel", run_id, "ok"),
        ("run.retry", run_id, "ok"),
        ("run.compensate", run_id, "ok"),
        ("run.cancel", run_id, "refused"),
        ("run.start", "audit.nothing", "failed"),
        ("run.start", "audit.greet", "failed"),
    ]
    entries = log(store)
    assert {(e.actor, e.workspace) for e in entries} == {(ME, "default")}
    published, started, paused, refused = entries[:4]
    assert published.details == {"version": 1, "new": True}
    assert started.details == {
        "version": 1,
        "idempotency_key": "k-1",
        "run": run_id,
        "created": True,
    }
    assert paused.details == {"reason": "lunch"}
    assert refused.details is not None
    assert f"run {run_id} is pausing already" in refused.details["error"]
    assert entries[-2].details is not None
    assert "has no published version" in entries[-2].details["error"]
    assert entries[-1].details is not None
    assert "invalid parameters of 'audit.greet'" in entries[-1].details["error"]
    before = entries[0].at
    assert all(before <= e.at <= datetime.now(UTC) for e in entries)


def test_answers_and_events_are_recorded_with_how_they_ended(
    client: Client, runner: EmbeddedRunner, store: Store
) -> None:
    client.register(workflow(ASK))
    run_id = client.start("audit.ask")
    runner.follow(run_id)  # the run now waits on its inquiry
    [inquiry] = client.get(run_id).pending_inquiries
    with pytest.raises(ParameterError):
        client.respond(inquiry.id, {"no": 1})  # does not fit the schema: nothing changes
    client.respond(inquiry.id, {"ok": True})
    with pytest.raises(ConflictError):
        client.respond(inquiry.id, {"ok": False})
    client.send_event("order.placed", subject="o-1", event_id="ev-1")
    assert client.send_event("order.placed", subject="o-1", event_id="ev-1").duplicate
    with pytest.raises(ParameterError):
        client.send_event("", event_id="ev-2")

    entries = [e for e in log(store) if not e.action.startswith(("workflow.", "run."))]
    assert [(e.action, e.target, e.outcome.value) for e in entries] == [
        ("inquiry.respond", inquiry.id, "failed"),
        ("inquiry.respond", inquiry.id, "ok"),
        ("inquiry.respond", inquiry.id, "refused"),
        ("event.send", "ev-1", "ok"),
        ("event.send", "ev-1", "ok"),
        ("event.send", "ev-2", "failed"),
    ]
    assert {e.actor for e in entries} == {ME}
    assert entries[1].details == {"responder": os_login()}
    assert entries[2].details is not None
    assert f"inquiry {inquiry.id} is answered, not pending" in entries[2].details["error"]
    assert entries[3].details == {"type": "order.placed", "subject": "o-1"}
    assert entries[4].details == {"type": "order.placed", "subject": "o-1", "duplicate": True}
    assert client.get(run_id).status is RunStatus.SUCCEEDED  # its only task was answered


def test_start_spec_publishes_and_starts_together_or_not_at_all(
    client: Client, store: Store
) -> None:
    spec = workflow(GREET)
    with pytest.raises(ParameterError):
        client.start_spec(spec, {})
    with pytest.raises(NotFound):
        client.versions("audit.greet")  # nothing was published
    run_id = client.start_spec(spec, {"name": "Ada"})

    assert seen(store) == [
        ("workflow.publish", "audit.greet", "failed"),
        ("run.start", "audit.greet", "failed"),
        ("workflow.publish", "audit.greet", "ok"),
        ("run.start", "audit.greet", "ok"),
    ]
    published, started = log(store)[2:]
    assert published.details == {"version": 1, "new": True}
    assert started.details == {
        "version": 1,
        "idempotency_key": None,
        "run": run_id,
        "created": True,
    }


def set_then_fail(store: Store, key: str, error: Exception) -> None:
    """Set ``key`` in an audited transaction, then fail with ``error`` before it commits."""
    by = database_principal({"login": "ada", "via": "client"})
    now = datetime.now(UTC)
    with audited(store.unit_of_work, by, Change("kv.set", key), clock=lambda: now) as uow:
        uow.kv_set(key, 1, secret=False, at=now)
        raise error


def test_a_change_that_rolls_back_leaves_no_ok_entry(store: Store) -> None:
    with pytest.raises(ConflictError):
        set_then_fail(store, "a", ConflictError("changed my mind"))
    with pytest.raises(RuntimeError):  # a bug: rolled back, and not recorded
        set_then_fail(store, "b", RuntimeError("bug"))

    with store.snapshot() as uow:
        assert uow.kv_list() == []
    [entry] = log(store)
    assert (entry.actor, entry.action, entry.target, entry.outcome.value) == (
        "client:ada",
        "kv.set",
        "a",
        "refused",
    )
    assert entry.details == {"error": "changed my mind"}
