"""``Client.respond`` and ``Client.send_event``: they write through the database only.

The client works on any Treadle database; here it shares the embedded runner's SQLite file,
and the runner stands in for the services to move the runs on afterwards.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from treadle.client import Client, EventOutcome
from treadle.common.errors import ConflictError, NotFound, ParameterError
from treadle.common.statuses import InquiryStatus

Embedded = Any  # the ``embedded`` fixture (tests/events/conftest.py)


@pytest.fixture
def client(embedded: Embedded) -> Iterator[Client]:
    url = embedded.runner.settings.database_url
    with Client(url, identity={"login": "ada", "via": "client"}) as made:
        yield made


def _asking(embedded: Embedded) -> tuple[str, dict[str, Any]]:
    run_id = embedded.start("eventtest.governed", {"risk_level": "high"}).state.run_id
    [inquiry] = embedded.pending(run_id)
    return run_id, inquiry


def test_respond_records_the_answer_and_who_gave_it(embedded: Embedded, client: Client) -> None:
    run_id, inquiry = _asking(embedded)

    answered = client.respond(inquiry["id"], {"approved": True})

    assert (answered.id, answered.status, answered.assigned_to) == (
        inquiry["id"],
        InquiryStatus.ANSWERED,
        "risk-team",
    )
    with embedded.runner.store.unit_of_work() as uow:
        stored = uow.get_inquiry(inquiry["id"])
    assert (stored.response, stored.responder) == ({"approved": True}, "ada")
    embedded.runner.follow(run_id)
    assert embedded.document(run_id)["output"]["deployed"] == "deployed"


def test_an_answer_that_does_not_fit_the_schema_changes_nothing(
    embedded: Embedded, client: Client
) -> None:
    run_id, inquiry = _asking(embedded)
    version = embedded.version(run_id)

    with pytest.raises(ParameterError) as refused:
        client.respond(inquiry["id"], {"approved": "yes"}, responder="bob")

    assert refused.value.problems == ("response['approved']: 'yes' is not of type 'boolean'",)
    assert embedded.version(run_id) == version
    assert [i["id"] for i in embedded.pending(run_id)] == [inquiry["id"]]


def test_an_inquiry_is_answered_once(embedded: Embedded, client: Client) -> None:
    _run_id, inquiry = _asking(embedded)
    client.respond(inquiry["id"], {"approved": True})

    with pytest.raises(ConflictError, match="is answered, not pending"):
        client.respond(inquiry["id"], {"approved": False})
    with pytest.raises(NotFound):
        client.respond("no-such-inquiry", {})


def test_an_inquiry_past_its_deadline_is_not_answered(embedded: Embedded) -> None:
    from treadle.scheduler.service.inquiries import answer_inquiry

    run_id = embedded.start("eventtest.gated_wait", {"contact": "c"}).state.run_id
    [inquiry] = embedded.pending(run_id)
    runs = embedded.runner.runs
    with runs.store.unit_of_work() as uow:
        from sqlalchemy import update

        from treadle.scheduler.store.models import inquiries

        uow.connection.execute(
            update(inquiries)
            .where(inquiries.c.id == inquiry["id"])
            .values(deadline=runs.clock() - timedelta(seconds=1))
        )

    with pytest.raises(ConflictError, match="expired"):
        answer_inquiry(runs, inquiry["id"], {"go": True})
    assert [i["id"] for i in embedded.pending(run_id)] == [inquiry["id"]]


def test_send_event_releases_waits_and_reports_duplicates(
    embedded: Embedded, client: Client
) -> None:
    run_id = embedded.start("eventtest.wait_action").state.run_id

    sent = client.send_event("order.created", data={"total": 101}, event_id="o-1")
    again = client.send_event("order.created", data={"total": 101}, event_id="o-1")

    assert sent == EventOutcome("o-1", False, [], [run_id], {})
    assert again == EventOutcome("o-1", True)
    embedded.runner.follow(run_id)
    assert embedded.document(run_id)["output"]["order"]["id"] == "o-1"


def test_send_event_refuses_what_is_not_an_event(client: Client) -> None:
    with pytest.raises(ParameterError) as refused:
        client.send_event("", data={"when": object()})
    assert refused.value.problems[0] == "the event type must be non-empty text"
    assert refused.value.problems[1].startswith("the event data must be JSON")
