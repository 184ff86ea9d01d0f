"""A scheduler publishes its own dispatches after commit; held rows are recovered by relays.

The scheduler's services on a real store (SQLite and PostgreSQL) with a fake clock and an
in-memory publisher: what the publisher receives, and what the outbox rows say.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, select

import treadle
from treadle.common.loader import load_packs, load_workflow_text
from treadle.common.messages import TaskResult
from treadle.common.statuses import AttemptStatus
from treadle.scheduler.core.commands import Command, DispatchTask
from treadle.scheduler.core.endings import AttemptEnding
from treadle.scheduler.service.commands import CommandHandlers
from treadle.scheduler.service.definitions import Definitions
from treadle.scheduler.service.direct_publish import DirectPublish
from treadle.scheduler.service.relay import Relay
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.service.starting import RunStarter
from treadle.scheduler.store import Store
from treadle.scheduler.store.models import outbox

from .conftest import FakeClock

HOLD = timedelta(seconds=10)
CHAIN = load_workflow_text(
    """
ref: tests.two_steps
tasks:
  - name: first
    action: core.noop
    on_success: second
  - name: second
    action: core.noop
""",
    "two_steps.yaml",
)


@dataclass
class RecordingPublisher:
    """An in-memory publisher: what was published, in order; fails while ``down``."""

    published: list[Command] = field(default_factory=list)
    down: bool = False

    def publish(self, commands: Sequence[Command]) -> None:
        if self.down:
            raise ConnectionError("the broker is down")
        self.published.extend(commands)

    def attempts(self) -> list[str]:
        return [c.dispatch.attempt_id for c in self.published if isinstance(c, DispatchTask)]


@dataclass
class Scheduler:
    """The services of one scheduler process, publishing its own dispatches."""

    store: Store
    clock: FakeClock
    publisher: RecordingPublisher
    runs: RunService
    relay: Relay
    direct: DirectPublish
    starter: RunStarter

    def finish(self, attempt_id: str) -> None:
        """Apply the attempt's success as the scheduler applies a worker's report."""
        result = TaskResult(
            attempt_id=attempt_id, outcome=AttemptStatus.SUCCEEDED, finished_at=self.clock()
        )
        with self.store.unit_of_work() as uow:
            self.runs.settle(uow, [AttemptEnding.reported(result)])

    def unsent(self) -> list[int]:
        with self.store.engine.connect() as connection:
            return list(
                connection.execute(select(outbox.c.id).where(outbox.c.sent_at.is_(None))).scalars()
            )


@pytest.fixture
def scheduler(store: Store, clock: FakeClock) -> Scheduler:
    catalog = load_packs([Path(treadle.__file__).parent / "packs"])
    catalog.workflows[CHAIN.ref] = CHAIN
    handlers = CommandHandlers("treadle.tasks")
    definitions = Definitions(store, catalog)
    runs = RunService(store, definitions, clock=clock, write_commands=handlers.write)
    starter = RunStarter(runs)
    publisher = RecordingPublisher()
    direct = DirectPublish(store, publisher, hold_for=HOLD, clock=clock)
    runs.outgoing = direct
    relay = Relay(starter, publisher, handlers, clock=clock)
    return Scheduler(store, clock, publisher, runs, relay, direct, starter)


def started_chain(scheduler: Scheduler) -> str:
    """Start a run as a client does and relay its first dispatch; returns that attempt."""
    client = RunService(
        scheduler.store,
        scheduler.runs.definitions,
        clock=scheduler.clock,
        write_commands=CommandHandlers("treadle.tasks").write,
    )
    RunStarter(client).start(CHAIN, {})
    assert scheduler.relay.drain() == 1  # a client's rows are never held
    [first] = scheduler.publisher.attempts()
    return first


def test_the_scheduler_publishes_its_successor_dispatch_itself_and_marks_it_sent(
    scheduler: Scheduler,
) -> None:
    first = started_chain(scheduler)
    scheduler.finish(first)

    assert scheduler.direct.pending == 1
    assert scheduler.relay.drain() == 0  # held: no relay pass publishes it
    assert len(scheduler.unsent()) == 1
    assert scheduler.direct.flush() == 1
    assert len(scheduler.publisher.attempts()) == 2
    second = scheduler.publisher.attempts()[1]
    assert second != first
    assert scheduler.direct.unmarked == 1  # marked by the next transaction that saves

    scheduler.direct.mark_sent()  # (a step with nothing to apply marks it on its own)
    assert scheduler.unsent() == []
    assert scheduler.direct.unmarked == 0


def test_the_next_saving_transaction_marks_what_was_published(scheduler: Scheduler) -> None:
    first = started_chain(scheduler)
    scheduler.finish(first)
    scheduler.direct.flush()
    assert len(scheduler.unsent()) == 1

    scheduler.finish(scheduler.publisher.attempts()[1])  # its save marks the row
    assert scheduler.direct.unmarked == 0
    assert scheduler.unsent() == []


def test_rows_held_by_a_scheduler_that_died_are_relayed_when_their_hold_ends(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    first = started_chain(scheduler)
    scheduler.finish(first)  # committed; the process "dies" before flushing

    clock.advance(HOLD.total_seconds() - 1)
    assert scheduler.relay.drain() == 0
    clock.advance(1)
    assert scheduler.relay.drain() == 1
    assert len(scheduler.publisher.attempts()) == 2
    assert scheduler.unsent() == []


def test_a_failed_publish_lifts_the_hold_so_the_relay_retries_at_once(
    scheduler: Scheduler,
) -> None:
    first = started_chain(scheduler)
    scheduler.finish(first)
    scheduler.publisher.down = True
    with pytest.raises(ConnectionError):
        scheduler.direct.flush()
    assert len(scheduler.unsent()) == 1

    scheduler.publisher.down = False
    assert scheduler.relay.drain() == 1  # no wait for the hold
    assert len(scheduler.publisher.attempts()) == 2
    assert scheduler.direct.pending == 0


def settle_then_fail(scheduler: Scheduler, attempt_id: str) -> None:
    """Apply the attempt's success in a transaction that then fails (and rolls back)."""
    result = TaskResult(
        attempt_id=attempt_id, outcome=AttemptStatus.SUCCEEDED, finished_at=scheduler.clock()
    )

    def failing_transaction() -> None:
        with scheduler.store.unit_of_work() as uow:
            scheduler.runs.settle(uow, [AttemptEnding.reported(result)])
            raise RuntimeError("the transaction fails after the save")

    with pytest.raises(RuntimeError):
        failing_transaction()


def test_a_rolled_back_save_publishes_nothing(scheduler: Scheduler) -> None:
    first = started_chain(scheduler)
    settle_then_fail(scheduler, first)
    assert scheduler.direct.pending == 0
    assert scheduler.direct.flush() == 0
    assert scheduler.unsent() == []


def test_the_marks_ride_on_the_statement_that_records_the_results(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    """No statement of its own marks the published row: on PostgreSQL the UPDATE that
    records the next result carries it; on SQLite it runs just before. Either way the row
    says when the broker confirmed it, and that it was published once."""
    first = started_chain(scheduler)
    scheduler.finish(first)
    confirmed = clock.advance(0.5)
    scheduler.direct.flush()
    clock.advance(2)
    statements: list[str] = []

    def sent(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(scheduler.store.engine, "before_cursor_execute", sent)
    try:
        scheduler.finish(scheduler.publisher.attempts()[1])
    finally:
        event.remove(scheduler.store.engine, "before_cursor_execute", sent)

    with scheduler.store.engine.connect() as connection:
        row = connection.execute(
            select(outbox.c.sent_at, outbox.c.publish_attempts).where(
                outbox.c.payload["dispatch"]["attempt_id"].as_string()
                == scheduler.publisher.attempts()[1]
            )
        ).one()
    assert row.sent_at == confirmed
    assert row.publish_attempts == 1
    marking = [s for s in statements if "UPDATE outbox" in s]
    if scheduler.store.engine.dialect.name == "postgresql":
        assert len(marking) == 1
        assert "sent AS (UPDATE outbox" in marking[0]
        assert "UPDATE attempts" in marking[0]
    else:
        assert [s.split(" SET ")[0] for s in marking] == ["UPDATE outbox"]


def test_marks_of_a_rolled_back_transaction_are_written_by_the_next(
    scheduler: Scheduler,
) -> None:
    first = started_chain(scheduler)
    scheduler.finish(first)
    scheduler.direct.flush()
    second = scheduler.publisher.attempts()[1]
    settle_then_fail(scheduler, second)
    assert scheduler.direct.unmarked == 1
    assert len(scheduler.unsent()) == 1

    scheduler.finish(second)
    assert scheduler.direct.unmarked == 0
    assert scheduler.unsent() == []


def test_runs_a_batch_names_for_the_first_time_are_read_together(scheduler: Scheduler) -> None:
    """Runs started by clients are new to the scheduler: the batch applying their first
    results reads them in one statement per table, not three statements per run."""
    client = RunService(
        scheduler.store,
        scheduler.runs.definitions,
        clock=scheduler.clock,
        write_commands=CommandHandlers("treadle.tasks").write,
    )
    for _ in range(3):
        RunStarter(client).start(CHAIN, {})
    assert scheduler.relay.drain() == 3
    firsts = scheduler.publisher.attempts()
    statements: list[str] = []

    def sent(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(" ".join(statement.split()))

    endings = [
        AttemptEnding.reported(
            TaskResult(attempt_id=a, outcome=AttemptStatus.SUCCEEDED, finished_at=scheduler.clock())
        )
        for a in firsts
    ]
    event.listen(scheduler.store.engine, "before_cursor_execute", sent)
    try:
        with scheduler.store.unit_of_work() as uow:
            scheduler.runs.settle(uow, endings)
    finally:
        event.remove(scheduler.store.engine, "before_cursor_execute", sent)

    selects = [s for s in statements if s.startswith("SELECT")]
    states = [s for s in selects if "runs.core" in s]  # whole run rows, not the lock's
    units = [s for s in selects if " FROM task_units " in s]
    executions = [s for s in selects if " FROM task_executions " in s]
    assert (len(states), len(units), len(executions)) == (1, 1, 1), selects
    scheduler.direct.flush()
    assert len(scheduler.publisher.attempts()) == 6  # each run's second task dispatched
