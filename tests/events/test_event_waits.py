"""Waiting for outside events in embedded mode: released by a matching event sent later,
never by one sent before the wait began; duplicates change nothing."""

from __future__ import annotations

from typing import Any

Embedded = Any  # the ``embedded`` fixture (tests/events/conftest.py)


def _gated(embedded: Embedded, contact: str = "c-1") -> str:
    """A run of eventtest.gated_wait, waiting on its gate question (no event wait yet)."""
    followed = embedded.start("eventtest.gated_wait", {"contact": contact})
    assert followed.waiting
    return followed.state.run_id


def test_a_matching_event_releases_the_wait_and_is_the_tasks_event(embedded: Embedded) -> None:
    run_id = _gated(embedded)
    assert embedded.respond(run_id, {"go": True}).waiting
    [wait] = embedded.waits(run_id)
    assert (wait.event_type, wait.subject) == ("mail.*", "contacts/c-1")

    other_subject = embedded.send("mail.received", subject="contacts/c-2", data={"replied": True})
    filtered_out = embedded.send("mail.received", subject="contacts/c-1", data={"replied": False})
    wrong_type = embedded.send("sms.received", subject="contacts/c-1", data={"replied": True})
    assert [o.updated_runs for o in (other_subject, filtered_out, wrong_type)] == [[], [], []]
    assert embedded.document(run_id)["status"] == "running"

    reply = embedded.send(
        "mail.received", subject="contacts/c-1", data={"replied": True}, event_id="reply-1"
    )

    assert reply.updated_runs == [run_id]
    assert reply.started_runs == []
    document = embedded.document(run_id)
    assert document["status"] == "succeeded"
    assert document["output"] == {
        "reply": {
            "id": "reply-1",
            "type": "mail.received",
            "subject": "contacts/c-1",
            "data": {"replied": True},
        }
    }
    assert embedded.waits(run_id) == []


def test_an_event_sent_before_the_wait_began_does_not_count(embedded: Embedded) -> None:
    run_id = _gated(embedded)
    early = embedded.send("mail.received", subject="contacts/c-1", data={"replied": True})
    assert early.updated_runs == []

    followed = embedded.respond(run_id, {"go": True})

    assert followed.waiting
    assert embedded.task(embedded.document(run_id), "await_reply")["status"] == "waiting"
    later = embedded.send("mail.received", subject="contacts/c-1", data={"replied": True})
    assert later.updated_runs == [run_id]
    assert embedded.document(run_id)["output"]["reply"]["id"] == later.event_id


def test_the_same_event_id_twice_is_a_duplicate_that_changes_nothing(embedded: Embedded) -> None:
    first_run = _gated(embedded, "c-1")
    second_run = _gated(embedded, "c-1")
    embedded.respond(first_run, {"go": True})

    first = embedded.send(
        "mail.received", subject="contacts/c-1", data={"replied": True}, event_id="dup"
    )
    embedded.respond(second_run, {"go": True})
    version = embedded.version(second_run)
    again = embedded.send(
        "mail.received", subject="contacts/c-1", data={"replied": True}, event_id="dup"
    )

    assert (first.duplicate, first.updated_runs) == (False, [first_run])
    assert (again.duplicate, again.updated_runs, again.started_runs) == (True, [], [])
    assert embedded.version(second_run) == version
    assert embedded.document(second_run)["status"] == "running"


def test_core_wait_for_event_succeeds_with_the_first_event_its_filter_accepts(
    embedded: Embedded,
) -> None:
    followed = embedded.start("eventtest.wait_action", {"minimum": 100})
    run_id = followed.state.run_id
    assert followed.waiting

    small = embedded.send("order.created", data={"total": 5})
    big = embedded.send("order.created", data={"total": 150}, event_id="big")

    assert (small.updated_runs, big.updated_runs) == ([], [run_id])
    document: dict[str, Any] = embedded.document(run_id)
    assert document["status"] == "succeeded"
    assert document["output"]["order"] == {
        "id": "big",
        "type": "order.created",
        "subject": None,
        "data": {"total": 150},
    }


def test_one_event_releases_every_run_waiting_for_it(embedded: Embedded) -> None:
    runs = [embedded.start("eventtest.wait_action").state.run_id for _ in range(3)]

    outcome = embedded.send("order.created", data={"total": 500})

    assert sorted(outcome.updated_runs) == sorted(runs)
    assert {embedded.document(r)["status"] for r in runs} == {"succeeded"}
