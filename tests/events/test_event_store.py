"""The store's side of events, on SQLite and PostgreSQL: recording once, finding waits by
pattern, and the current definition versions triggers are read from."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from treadle.scheduler.core.state import initial_state
from treadle.scheduler.store import Store
from treadle.scheduler.store.models import event_waits

T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest, migrated_database_url: Callable[[str], str]
) -> Iterator[Store]:
    opened = Store.open(migrated_database_url(request.param))
    try:
        yield opened
    finally:
        opened.close()


def test_an_event_id_is_recorded_once(store: Store) -> None:
    with store.unit_of_work() as uow:
        assert uow.record_event("e-1", "order.created", None, {"total": 5}, T0)
    with store.unit_of_work() as uow:
        assert not uow.record_event("e-1", "order.changed", "x", {"total": 9}, T0)
        entry = uow.get_received_event("e-1")
    assert entry is not None
    assert (entry.type, entry.subject, entry.data, entry.received_at) == (
        "order.created",
        None,
        {"total": 5},
        T0,
    )


def test_events_are_listed_newest_first_by_type_pattern(store: Store) -> None:
    with store.unit_of_work() as uow:
        for n, kind in enumerate(["mail.in", "sms.in", "mail.out"]):
            uow.record_event(f"e{n}", kind, f"s{n}", None, T0 + timedelta(seconds=n))
        assert [e.id for e in uow.list_received_events()] == ["e2", "e1", "e0"]
        assert [e.id for e in uow.list_received_events(event_type="mail.*")] == ["e2", "e0"]
        assert [e.id for e in uow.list_received_events(event_type="sms.in")] == ["e1"]
        assert [e.id for e in uow.list_received_events(subject="s0")] == ["e0"]
        assert [e.id for e in uow.list_received_events(limit=1)] == ["e2"]


def test_waits_are_found_by_their_type_and_subject_patterns(store: Store) -> None:
    patterns = {
        "exact": ("mail.received", None),
        "wild": ("mail.*", "contacts/*"),
        "other": ("sms.*", None),
        "subject": ("mail.received", "contacts/c-2"),
        "percent": ("mail%", None),  # SQL wildcards are plain text in a pattern
    }
    with store.unit_of_work() as uow:
        uow.insert_run(initial_state("r-1", "wf", T0))
        for wait_id, (event_type, subject) in patterns.items():
            uow.connection.execute(
                insert(event_waits).values(
                    wait_id=wait_id,
                    run_id="r-1",
                    event_type=event_type,
                    subject=subject,
                    deadline=None,
                    created_at=T0,
                )
            )
    with store.unit_of_work() as uow:
        found = uow.waits_for_event("mail.received", "contacts/c-1")
        without_subject = uow.waits_for_event("mail.received", None)
        listed = uow.list_event_waits(run_id="r-1")
    assert {w.wait_id for w in found} == {"exact", "wild"}
    assert {w.wait_id for w in without_subject} == {"exact"}
    assert len(listed) == len(patterns)


def test_latest_definition_versions(store: Store) -> None:
    with store.unit_of_work() as uow:
        assert uow.latest_definition_versions() == {}
        uow.register_definition("a", {"spec.json": "1"}, dialect="attune", author=None, at=T0)
        uow.register_definition("a", {"spec.json": "2"}, dialect="attune", author=None, at=T0)
        uow.register_definition("b", {"spec.json": "1"}, dialect="attune", author=None, at=T0)
        assert uow.latest_definition_versions() == {("", "a"): 2, ("", "b"): 1}
