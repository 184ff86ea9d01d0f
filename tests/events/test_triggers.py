"""Event triggers in embedded mode: one run per event id and definition, with the payload."""

from __future__ import annotations

import textwrap
from typing import Any

from treadle.common.loader import load_workflow_text

Embedded = Any  # the ``embedded`` fixture (tests/events/conftest.py)

CONTACT = {"contact_id": "contact_123", "company": "Acme", "email": "jane@acme.example"}


def test_a_matching_event_starts_one_run_with_the_payload_as_parameters(
    embedded: Embedded,
) -> None:
    embedded.publish("eventtest.intake")

    outcome = embedded.send(
        "contact.created", subject="crm.contact", data=CONTACT, event_id="evt_1"
    )

    [run_id] = outcome.started_runs
    assert (outcome.duplicate, outcome.updated_runs, outcome.refused) == (False, [], {})
    document = embedded.document(run_id)
    assert document["workflow"] == "eventtest.intake"
    assert document["status"] == "succeeded"
    # data keys the workflow does not declare (email) are left out; the trigger's own
    # parameters are rendered with the event in scope
    assert document["parameters"] == {
        "contact_id": "contact_123",
        "company": "Acme",
        "source": "evt_1",
    }
    assert document["output"] == {"said": "contact_123 at Acme", "source": "evt_1"}
    assert embedded.trigger_runs("evt_1", "eventtest.intake") == run_id


def test_the_same_event_id_twice_starts_one_run(embedded: Embedded) -> None:
    embedded.publish("eventtest.intake")

    first = embedded.send("contact.created", subject="crm.contact", data=CONTACT, event_id="e")
    second = embedded.send("contact.created", subject="crm.contact", data=CONTACT, event_id="e")

    assert len(first.started_runs) == 1
    assert (second.duplicate, second.started_runs) == (True, [])
    with embedded.runner.store.unit_of_work() as uow:
        runs = uow.list_runs(workflow="eventtest.intake")
    assert [r.id for r in runs] == first.started_runs


def test_type_subject_and_filter_decide_which_events_start_runs(embedded: Embedded) -> None:
    embedded.publish("eventtest.intake")

    outcomes = [
        embedded.send("contact.updated", subject="crm.contact", data=CONTACT),
        embedded.send("contact.created", subject="erp.contact", data=CONTACT),
        embedded.send("contact.created", data=CONTACT),
        embedded.send(
            "contact.created", subject="crm.contact", data={**CONTACT, "company": "Nope"}
        ),
    ]

    assert [o.started_runs for o in outcomes] == [[], [], [], []]
    assert all(not o.duplicate for o in outcomes)


def test_a_trigger_that_cannot_start_is_reported_and_the_event_still_recorded(
    embedded: Embedded,
) -> None:
    embedded.publish("eventtest.intake")

    outcome = embedded.send("contact.created", subject="crm.contact", data={"company": "Acme"})

    assert outcome.started_runs == []
    assert "missing required parameter 'contact_id'" in outcome.refused["eventtest.intake"]
    with embedded.runner.store.unit_of_work() as uow:
        assert uow.get_received_event(outcome.event_id) is not None


def test_only_the_latest_published_version_triggers(embedded: Embedded) -> None:
    embedded.publish("eventtest.intake")
    assert embedded.send("contact.created", subject="crm.x", data=CONTACT).started_runs

    spec = embedded.runner.catalog.workflow("eventtest.intake")
    untriggered = spec.model_copy(update={"trigger": None})
    embedded.runner.definitions.publish(untriggered, at=embedded.runner.clock())
    assert embedded.send("contact.created", subject="crm.x", data=CONTACT).started_runs == []

    embedded.runner.definitions.publish(spec, at=embedded.runner.clock())
    assert embedded.send("contact.created", subject="crm.x", data=CONTACT).started_runs


def test_one_event_starts_one_run_of_each_matching_definition_and_releases_waits(
    embedded: Embedded,
) -> None:
    embedded.publish("eventtest.intake")
    second = load_workflow_text(
        textwrap.dedent(
            """\
            ref: eventtest.second_intake
            parameters:
              contact_id: {type: string}
            trigger: {type: event, event_type: "contact.*"}
            tasks:
              - name: wait_more
                action: core.wait_for_event
                input: {type: contact.created}
            """
        ),
        "<test>",
    )
    embedded.runner.definitions.publish(second, at=embedded.runner.clock())
    waiting = embedded.start("eventtest.wait_action").state.run_id  # waits for orders only
    listener = embedded.runner.start(second, {}, None)
    embedded.runner.follow(listener)

    outcome = embedded.send("contact.created", subject="crm.contact", data=CONTACT)

    assert len(outcome.started_runs) == 2
    workflows = {embedded.document(r)["workflow"] for r in outcome.started_runs}
    assert workflows == {"eventtest.intake", "eventtest.second_intake"}
    # the run waiting for contact.created is released; the runs the event started are
    # not (their wait began with the event that started them), nor the order waiter
    assert outcome.updated_runs == [listener]
    assert embedded.document(waiting)["status"] == "running"
