"""``treadle_schedule_fires_total{outcome}``: beat's fires counted by the status recorded.

The real :class:`~treadle.scheduler.service.beat.BeatServices` (what ``treadle beat``
builds, with its :class:`~treadle.common.metrics.Metrics`) on a real SQLite store, its
clock faked: a fire that starts a run, one skipped because the run still goes on, fires
skipped by the catch-up window and the missed policy, one whose start is refused, and a
buffered fire later started. Each outcome is counted once, after its transaction
commits; the runs beat starts are counted as started by their workflow.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from treadle.common.catalog import Catalog
from treadle.common.loader import load_packs, load_workflow_text
from treadle.common.metrics import Metrics
from treadle.common.metrics_catalog import MetricSource
from treadle.common.settings import Settings
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.service import schedules
from treadle.scheduler.service.beat import BeatServices
from treadle.scheduler.store.models import runs

PACKS = Path(__file__).resolve().parents[2] / "packs"
T0 = datetime(2026, 6, 1, 12, tzinfo=UTC)

GREETER = """
ref: sched.greet
parameters:
  who: {type: string, default: world}
tasks:
  - name: hello
    action: core.echo
    input: {message: "{{ parameters.who }}"}
"""


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def beat(tmp_path: Path) -> Iterator[tuple[BeatServices, Clock]]:
    catalog: Catalog = load_packs([PACKS])
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'beat.db'}")
    runner = EmbeddedRunner(settings, catalog)
    clock = Clock()
    spec = load_workflow_text(textwrap.dedent(GREETER), "wf.yaml")
    runner.definitions.publish(spec, at=clock())
    metrics = Metrics([MetricSource.BEAT, MetricSource.RUNS])
    try:
        yield BeatServices(runner.store, settings, clock=clock, metrics=metrics), clock
    finally:
        runner.close()


def fires(services: BeatServices, outcome: str) -> float:
    found = services.metrics.registry.get_sample_value(
        "treadle_schedule_fires_total", {"outcome": outcome}
    )
    return 0.0 if found is None else found


def create(services: BeatServices, name: str, **fields: Any) -> str:
    given = schedules.ScheduleInput(name=name, workflow="sched.greet", **fields)
    with services.store.unit_of_work() as uow:
        return schedules.create(uow, given, workspace="default", created_by="t", now=T0).id


def test_each_fire_is_counted_by_its_outcome(beat: tuple[BeatServices, Clock]) -> None:
    services, clock = beat
    skip = create(services, "skip", interval=timedelta(minutes=1))
    late = create(
        services,
        "late",
        interval=timedelta(minutes=10),
        overlap="allow_all",
        catchup_window=timedelta(minutes=30),
        missed="last",
    )
    refused = create(services, "refused", interval=timedelta(minutes=1), parameters={"who": 5})
    buffer = create(services, "buffer", interval=timedelta(minutes=1), overlap="buffer_one")

    clock.now = T0 + timedelta(minutes=1, seconds=1)
    for schedule in (skip, refused, buffer):
        services.firing.fire_due(schedule)
    assert fires(services, "started") == 2
    assert fires(services, "failed_to_start") == 1
    clock.now = T0 + timedelta(minutes=2, seconds=1)
    services.firing.fire_due(skip)
    services.firing.fire_due(buffer)
    assert fires(services, "skipped_overlap") == 1
    assert fires(services, "buffered") == 1

    clock.now = T0 + timedelta(minutes=65)  # fires at 10..60 minutes; beat looks only now
    services.firing.fire_due(late)
    assert fires(services, "skipped_catchup_window") == 3
    assert fires(services, "skipped_missed") == 2
    assert fires(services, "started") == 3

    # The buffered fire starts once the schedule's run has ended.
    with services.store.unit_of_work() as uow:
        uow.connection.execute(update(runs).values(status="succeeded"))
    services.firing.follow_up(buffer)
    assert fires(services, "started") == 4
    started = services.metrics.registry.get_sample_value(
        "treadle_runs_started_total", {"workflow": "sched.greet"}
    )
    assert started == 4
