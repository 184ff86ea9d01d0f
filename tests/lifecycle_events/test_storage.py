"""The events' own outbox: the same event id is stored once, claims keep each run's order
while another scheduler holds some of its events (PostgreSQL, ``SKIP LOCKED``), and
purging a run removes its events and deliveries (a definition's events belong to no run
and stay)."""

from __future__ import annotations

from datetime import timedelta

from tests.conftest import DatabaseFactory

from treadle.scheduler.service.lifecycle_events.pump import DeliveryPolicy, LifecycleEventPump
from treadle.scheduler.service.retention import PurgeRequest, purge
from treadle.scheduler.store import Store
from treadle.scheduler.store.lifecycle_repo import NewLifecycleEvent

from .conftest import SinkServer, StepClock, run_chain, stored_events
from .test_webhook_sinks import deliveries, sink_of


def _event(event_id: str, run_id: str | None) -> NewLifecycleEvent:
    return NewLifecycleEvent(event_id, run_id, "workflows.changes.run.start", {"id": event_id})


def test_a_claim_keeps_each_runs_order_while_another_holds_part_of_it(
    migrated_database_url: DatabaseFactory,
) -> None:
    store = Store.open(migrated_database_url("postgresql"))
    try:
        with store.unit_of_work() as uow:
            uow.add_lifecycle_events(
                [
                    _event("a1", "run-a"),
                    _event("a2", "run-a"),
                    _event("b1", "run-b"),
                    _event("a3", "run-a"),
                    _event("d1", None),
                ]
            )
        with store.unit_of_work() as uow:  # the same change told again is kept once
            uow.add_lifecycle_events([_event("a1", "run-a")])
            assert len(uow.list_lifecycle_events()) == 5
        with store.unit_of_work() as first:
            [held] = first.claim_lifecycle_events(1)
            assert held.event_id == "a1"
            with store.unit_of_work() as second:  # another scheduler, meanwhile
                claimed = second.claim_lifecycle_events(10)
                assert [e.event_id for e in claimed] == ["b1", "d1"]  # none of run-a's
                second.mark_lifecycle_published([e.id for e in claimed], held.created_at)
            first.mark_lifecycle_published([held.id], held.created_at)
        with store.unit_of_work() as third:
            assert [e.event_id for e in third.claim_lifecycle_events(10)] == ["a2", "a3"]
    finally:
        store.close()


def test_purging_a_run_removes_its_events_and_deliveries(
    make_runner, sink_server: SinkServer
) -> None:
    runner = make_runner()
    run_ids = {run_chain(runner), run_chain(runner)}
    pump = LifecycleEventPump(
        runner.store,
        clock=StepClock(),
        exchange=None,
        policy=DeliveryPolicy(sinks=[sink_of(sink_server, "*")]),
    )
    pump.publish_pending()
    pump.deliver_due()
    assert {d.run_id for d in deliveries(runner)} == {None, *run_ids}

    report = purge(runner.store, PurgeRequest(cutoff=runner.clock() + timedelta(days=1)))

    assert set(report.runs) == run_ids
    assert (report.rows["lifecycle_events"], report.rows["lifecycle_deliveries"]) == (12, 12)
    for run_id in run_ids:
        assert stored_events(runner.store, run_id) == []
    assert {e.run_id for e in stored_events(runner.store)} == {None}  # the definition's
    assert {d.run_id for d in deliveries(runner)} == {None}
