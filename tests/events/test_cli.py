"""``treadle events`` and ``treadle inquiry`` in embedded mode, as a user types them."""

from __future__ import annotations

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


def test_events_send_refuses_bad_input_with_exit_2(treadle: Cli) -> None:
    bad_json = treadle("events", "send", "x.y", "--data", "{nope", code=2)
    assert "--data is not JSON" in bad_json.stderr
    empty_type = treadle("events", "send", " ", code=2)
    assert "the event type must be non-empty text" in empty_type.stderr
