"""``treadle events`` and ``treadle inquiry`` in embedded mode, as a user types them."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

Cli = Any  # the ``treadle`` fixture (tests/events/conftest.py)

REPLY = json.dumps({"replied": True})


def test_an_event_wait_released_by_events_send_and_not_by_an_earlier_event(
    treadle: Cli,
) -> None:
    started = treadle("run", "eventtest.gated_wait", "-p", "contact=c-1", "--json", "-q", code=3)
    document = started.json()
    run_id = document["id"]
    [inquiry] = document["inquiries"]

    early = treadle(
        "events", "send", "mail.received", "--subject", "contacts/c-1", "--data", REPLY,
        "--id", "early", code=0,
    )  # fmt: skip
    assert early.json() == {
        "event_id": "early",
        "duplicate": False,
        "started_runs": [],
        "updated_runs": [],
        "refused": {},
    }
    listed = treadle("inquiry", "list", code=0)
    assert f"{inquiry['id']}  pending    run {run_id}  task gate (for sdr-team)" in listed.stdout

    answered = treadle("inquiry", "respond", inquiry["id"], "--data", '{"go": true}', "-q")
    assert answered.code == 3, str(answered)  # now waiting for the reply event
    waits = treadle("events", "waits", "--json", code=0).json()
    assert [(w["run"], w["type"], w["subject"]) for w in waits] == [
        (run_id, "mail.*", "contacts/c-1")
    ]

    again = treadle(
        "events", "send", "mail.received", "--subject", "contacts/c-1", "--data", REPLY,
        "--id", "early", "--text", code=0,
    )  # fmt: skip
    assert again.stdout == "event early is a duplicate: nothing happened\n"
    late = treadle(
        "events", "send", "mail.received", "--subject", "contacts/c-1", "--data", REPLY,
        "--id", "late", code=0,
    )  # fmt: skip
    assert late.json()["updated_runs"] == [run_id]
    assert f"run {run_id} succeeded" in late.stderr

    shown = treadle("runs", "show", run_id, code=0).json()
    assert shown["status"] == "succeeded"
    assert shown["output"]["reply"]["id"] == "late"
    events = treadle("events", "list", "--json", code=0).json()
    assert [e["id"] for e in events] == ["late", "early"]
    assert treadle("events", "waits", "--json", code=0).json() == []


def test_events_send_starts_one_triggered_run_per_event_id(treadle: Cli) -> None:
    data = json.dumps({"contact_id": "contact_123", "company": "Acme", "title": "VP"})
    args = ("events", "send", "contact.created", "--subject", "crm.contact", "--data", data)

    first = treadle(*args, "--id", "evt_contact_created_1", code=0).json()
    second = treadle(*args, "--id", "evt_contact_created_1", code=0).json()

    [run_id] = first["started_runs"]
    assert (second["duplicate"], second["started_runs"]) == (True, [])
    runs = treadle("runs", "list", "--workflow", "eventtest.intake", "--json", code=0).json()
    assert [(r["id"], r["status"]) for r in runs] == [(run_id, "succeeded")]
    shown = treadle("runs", "show", run_id, code=0).json()
    assert shown["parameters"] == {
        "contact_id": "contact_123",
        "company": "Acme",
        "source": "evt_contact_created_1",
    }
    # where the event id is recorded: with the event, and with the run it started
    [event] = treadle("events", "list", "--json", code=0).json()
    assert (event["id"], event["started_runs"]) == ("evt_contact_created_1", [run_id])
    rendered = treadle("runs", "show", run_id, "--format", "workflows-v1", code=0).json()["run"]
    assert (rendered["trigger_event_id"], rendered["trigger_type"]) == (
        "evt_contact_created_1",
        "TRIGGER_TYPE_EVENT",
    )


def test_events_send_refuses_bad_input_with_exit_2(treadle: Cli) -> None:
    bad_json = treadle("events", "send", "x.y", "--data", "{nope", code=2)
    assert "--data is not JSON" in bad_json.stderr
    empty_type = treadle("events", "send", " ", code=2)
    assert "the event type must be non-empty text" in empty_type.stderr


def test_inquiry_show_names_the_assignee_and_a_refused_answer_changes_nothing(
    treadle: Cli,
) -> None:
    started = treadle("run", "eventtest.assigned", "-p", "team=web", "--json", "-q", code=3)
    run_id = started.json()["id"]
    [asked] = started.json()["inquiries"]

    shown = treadle("inquiry", "show", asked["id"], code=0).json()
    assert shown == {
        "id": asked["id"],
        "run": run_id,
        "task": "confirm",
        "purpose": "task",
        "status": "pending",
        "prompt": "Confirm the change for web?",
        "schema": {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]},
        "assigned_to": "web-oncall",
        "deadline": None,
        "response": None,
        "responder": None,
    }
    before = treadle("runs", "show", run_id, code=0).json()

    refused = treadle("inquiry", "respond", asked["id"], "--data", '{"ok": "sure"}', code=2)

    assert refused.stdout == ""
    assert refused.stderr.splitlines() == [
        "error: the answer does not fit the inquiry's schema:",
        "  response['ok']: 'sure' is not of type 'boolean'",
    ]
    assert treadle("inquiry", "show", asked["id"], code=0).json() == shown
    assert treadle("runs", "show", run_id, code=0).json() == before

    # the answer that fits moves the run on to the next question, a wait_for inquiry
    treadle("inquiry", "respond", asked["id"], "--data", '{"ok": true}', "-q", code=3)
    answered = treadle("inquiry", "show", asked["id"], code=0).json()
    assert (answered["status"], answered["response"]) == ("answered", {"ok": True})
    assert answered["responder"]  # the login of whoever answered
    [(second, status, assignee)] = [
        (i["id"], i["status"], i["assigned_to"])
        for i in treadle("inquiry", "list", "--run", run_id, "--json", code=0).json()
    ]
    assert (status, assignee) == ("pending", "web-lead")
    empty = treadle("inquiry", "respond", second, "--data", '{"who": ""}', code=2)
    assert "  response['who']: '' should be non-empty" in empty.stderr.splitlines()

    done = treadle("inquiry", "respond", second, "--data", '{"who": "ann"}', "--json", code=0)
    assert done.json()["output"] == {"said": "shipped by ann"}
    everything = treadle("inquiry", "list", "--status", "all", "--run", run_id, "--json").json()
    assert [(i["task"], i["assigned_to"], i["status"]) for i in everything] == [
        ("confirm", "web-oncall", "answered"),
        ("ship", "web-lead", "answered"),
    ]


def test_an_inquiry_whose_schema_is_not_a_json_schema_refuses_answers_clearly(
    treadle: Cli,
) -> None:
    started = treadle("run", "eventtest.broken_schema", "--json", "-q", code=3)
    run_id = started.json()["id"]
    [asked] = started.json()["inquiries"]
    before = treadle("runs", "show", run_id, code=0).json()

    refused = treadle("inquiry", "respond", asked["id"], "--data", "{}", code=2)

    assert refused.stderr == (
        f"error: inquiry {asked['id']} cannot be answered: its schema is not a valid JSON "
        "Schema (schema['type']: 'objekt' is not valid under any of the given schemas); "
        f"fix the workflow, and cancel run {run_id}\n"
    )
    assert treadle("runs", "show", run_id, code=0).json() == before


def test_notifications_from_treadle_run_log_to_stderr_and_failures_are_results(
    treadle: Cli, webhook: Any, unreachable_url: str
) -> None:
    treadle.in_process = False  # what a new process does with no logging set up
    secret = "cli-hook-secret"
    done = treadle(
        "run", "eventtest.notify_all", "-p", f"url={webhook.url}",
        "-p", f"unreachable={unreachable_url}", "-p", f"secret={secret}", "--json", "-q",
        code=0,
    )  # fmt: skip

    document = done.json()
    run_id = document["id"]
    # no logging is set up by `treadle run`: the log channel still shows, on stderr
    assert (
        f"INFO treadle.notify: notification (run {run_id} task to_log): run {run_id} says hello"
        in done.stderr.splitlines()
    )
    assert document["output"]["hook"] == {
        "delivered": True,
        "channel": "webhook",
        "status_code": 200,
    }
    nowhere = document["output"]["nowhere"]
    assert (nowhere["delivered"], nowhere["channel"]) == (False, "webhook")
    assert nowhere["error"].startswith("ConnectError")
    [request] = webhook.received
    expected = hmac.new(secret.encode(), request.body, hashlib.sha256).hexdigest()
    assert request.headers["x-treadle-signature"] == f"sha256={expected}"
    assert secret not in done.stdout + done.stderr
