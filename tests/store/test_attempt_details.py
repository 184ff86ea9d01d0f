"""A task's attempts on SQLite and PostgreSQL: the input each was dispatched with (read from
its outbox row), what its action printed (recorded with its result), and the purge.

The scheduler's services on a real store with a fake clock and an in-memory publisher; the
worker's reports are applied as the scheduler applies them (``RunService.settle``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

import treadle
from treadle.common.errors import NotFound, ParameterError
from treadle.common.loader import load_packs, load_workflow_text
from treadle.common.messages import ActionOutput, ErrorInfo, TaskResult
from treadle.common.statuses import AttemptStatus, RunStatus
from treadle.scheduler.core.commands import Command, DispatchTask
from treadle.scheduler.core.endings import AttemptEnding
from treadle.scheduler.service.attempt_views import task_attempts
from treadle.scheduler.service.commands import CommandHandlers
from treadle.scheduler.service.definitions import Definitions
from treadle.scheduler.service.relay import Relay
from treadle.scheduler.service.retention import PurgeRequest, purge
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.service.starting import RunStarter
from treadle.scheduler.store import Store
from treadle.scheduler.store.output_tables import attempt_outputs

from .conftest import FakeClock

FLOW = load_workflow_text(
    """
ref: tests.printing
parameters:
  name: {type: string, default: Ada}
tasks:
  - name: greet
    action: core.echo
    input: {message: "hello {{ parameters.name }}"}
    retry: {count: 2}
    on_success: tell
  - name: tell
    action: core.notify
    input: {channel: log, message: "greeted", secret: "webhook-secret-Tq93"}
""",
    "printing.yaml",
)
PRINTED = ActionOutput(stdout="hello from greet\n", stderr="careful\n")


@dataclass
class RecordingPublisher:
    published: list[Command] = field(default_factory=list)

    def publish(self, commands: Sequence[Command]) -> None:
        self.published.extend(commands)

    def attempts(self) -> list[str]:
        return [c.dispatch.attempt_id for c in self.published if isinstance(c, DispatchTask)]


@dataclass
class Scheduler:
    store: Store
    clock: FakeClock
    publisher: RecordingPublisher
    runs: RunService
    relay: Relay
    starter: RunStarter

    def report(self, attempt_id: str, status: AttemptStatus, output: ActionOutput | None) -> None:
        """Apply a worker's report of the attempt, as the scheduler does."""
        result = TaskResult(
            attempt_id=attempt_id,
            outcome=status,
            error=None
            if status is AttemptStatus.SUCCEEDED
            else ErrorInfo(type="Boom", message="it broke"),
            finished_at=self.clock(),
            output=output,
        )
        with self.store.unit_of_work() as uow:
            self.runs.settle(uow, [AttemptEnding.reported(result)])
        self.relay.drain()

    def attempts(self, run_id: str, task: str, **options: Any) -> dict[str, Any]:
        with self.store.snapshot() as uow:
            return task_attempts(uow, run_id, task, **options)

    def output_rows(self) -> int:
        with self.store.engine.connect() as connection:
            return int(
                connection.execute(select(func.count()).select_from(attempt_outputs)).scalar_one()
            )


@pytest.fixture
def scheduler(store: Store, clock: FakeClock) -> Scheduler:
    catalog = load_packs([Path(treadle.__file__).parent / "packs"])
    catalog.workflows[FLOW.ref] = FLOW
    with store.unit_of_work() as uow:
        uow.register_catalog(catalog, clock())  # the registry names secret parameters
    handlers = CommandHandlers("treadle.tasks")
    runs = RunService(
        store, Definitions(store, catalog), clock=clock, write_commands=handlers.write
    )
    starter = RunStarter(runs)
    publisher = RecordingPublisher()
    relay = Relay(starter, publisher, handlers, clock=clock)
    return Scheduler(store, clock, publisher, runs, relay, starter)


def test_each_attempt_shows_its_input_and_what_it_printed(scheduler: Scheduler) -> None:
    run_id = scheduler.starter.start(FLOW, {"name": "Grace"})
    scheduler.relay.drain()
    [first] = scheduler.publisher.attempts()
    scheduler.report(first, AttemptStatus.FAILED, ActionOutput(stdout="try 1\n"))
    [_, second] = scheduler.publisher.attempts()
    scheduler.report(second, AttemptStatus.SUCCEEDED, PRINTED)

    page = scheduler.attempts(run_id, "greet")

    assert page["next_cursor"] is None
    tried = page["attempts"]
    assert [(a["attempt"], a["status"]) for a in tried] == [(1, "failed"), (2, "succeeded")]
    assert [a["attempt_id"] for a in tried] == [first, second]
    assert all(a["input"] == {"message": "hello Grace"} for a in tried)
    assert tried[0]["output"] == {
        "stdout": "try 1\n",
        "stderr": "",
        "stdout_truncated": False,
        "stderr_truncated": False,
    }
    assert tried[1]["output"] == PRINTED.model_dump(mode="json")
    assert tried[0]["error"] == {"type": "Boom", "message": "it broke"}
    assert (tried[1]["action"], tried[1]["execution"], tried[1]["item"]) == ("core.echo", 1, None)


def test_the_action_s_secret_parameters_are_masked_in_the_input(scheduler: Scheduler) -> None:
    run_id = scheduler.starter.start(FLOW, {})
    scheduler.relay.drain()
    scheduler.report(scheduler.publisher.attempts()[0], AttemptStatus.SUCCEEDED, None)

    [told] = scheduler.attempts(run_id, "tell")["attempts"]

    assert told["input"]["secret"] == "***"
    assert told["input"]["message"] == "greeted"
    assert "webhook-secret-Tq93" not in repr(told)
    assert told["output"] is None  # it printed nothing (no report yet)


def test_the_first_report_s_output_is_kept_and_unknown_attempts_are_ignored(
    scheduler: Scheduler,
) -> None:
    run_id = scheduler.starter.start(FLOW, {})
    scheduler.relay.drain()
    [first] = scheduler.publisher.attempts()
    scheduler.report(first, AttemptStatus.SUCCEEDED, PRINTED)
    scheduler.report(first, AttemptStatus.SUCCEEDED, ActionOutput(stdout="a second copy"))
    scheduler.report(f"{run_id}-gone/1/0/1", AttemptStatus.SUCCEEDED, PRINTED)  # no such run
    scheduler.report(first, AttemptStatus.SUCCEEDED, ActionOutput())  # nothing printed

    [greeted] = scheduler.attempts(run_id, "greet")["attempts"]

    assert greeted["output"] == PRINTED.model_dump(mode="json")
    assert scheduler.output_rows() == 1


def test_attempts_come_a_page_at_a_time(scheduler: Scheduler) -> None:
    run_id = scheduler.starter.start(FLOW, {})
    scheduler.relay.drain()
    scheduler.report(scheduler.publisher.attempts()[0], AttemptStatus.FAILED, None)
    scheduler.report(scheduler.publisher.attempts()[1], AttemptStatus.FAILED, None)

    first = scheduler.attempts(run_id, "greet", limit=2)
    rest = scheduler.attempts(run_id, "greet", limit=2, cursor=first["next_cursor"])

    assert [a["attempt"] for a in first["attempts"]] == [1, 2]
    assert [a["attempt"] for a in rest["attempts"]] == [3]
    assert rest["next_cursor"] is None
    with pytest.raises(ParameterError, match="is not a next cursor"):
        scheduler.attempts(run_id, "greet", cursor="bm90IGEgY3Vyc29y")
    with pytest.raises(NotFound, match="has no execution of task 'tell'"):
        scheduler.attempts(run_id, "tell")
    with pytest.raises(NotFound, match="has no execution 9"):
        scheduler.attempts(run_id, "greet", execution=9)
    with pytest.raises(NotFound, match="not found"):
        scheduler.attempts(run_id, "greet", workspace="elsewhere")


def test_the_purge_removes_what_the_run_s_actions_printed(
    scheduler: Scheduler, clock: FakeClock
) -> None:
    run_id = scheduler.starter.start(FLOW, {})
    scheduler.relay.drain()
    scheduler.report(scheduler.publisher.attempts()[0], AttemptStatus.SUCCEEDED, PRINTED)
    scheduler.report(scheduler.publisher.attempts()[1], AttemptStatus.SUCCEEDED, PRINTED)
    with scheduler.store.snapshot() as uow:
        row = uow.run_status(run_id)
    assert row is not None
    assert row[1] is RunStatus.SUCCEEDED
    assert scheduler.output_rows() == 2

    report = purge(scheduler.store, PurgeRequest(clock() + timedelta(days=1)))

    assert report.runs == [run_id]
    assert report.rows["attempt_outputs"] == 2
    assert scheduler.output_rows() == 0
