"""Fixtures for the store tests: every test runs on SQLite and on PostgreSQL.

``store`` is a migrated store on a database of its own of each kind (``store_url``, a copy
of one migrated once: ``migrated_database_url`` in ``tests/conftest.py``), with a fake
clock; ``db_url`` is an empty database of each kind, for the migrations' own tests.
``realistic_state`` builds a run state like one the core produces mid-run. ``save_one``
saves one run the way the services do (``lock_runs``, then ``save_runs``). ``statements``
and ``write_log`` watch what a test's store sends (``statement_log``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from treadle.common.limits import Limits
from treadle.common.messages import TaskDispatch
from treadle.common.statuses import RunStatus, TaskStatus
from treadle.scheduler.core.commands import Command, DispatchTask
from treadle.scheduler.core.events import Event
from treadle.scheduler.core.state import (
    ROOT_SCOPE,
    Execution,
    Failure,
    RunContext,
    RunState,
    Timer,
    TimerKind,
    Unit,
    Units,
)
from treadle.scheduler.service.commands import CommandHandlers
from treadle.scheduler.store import RunChange, Store, UnitOfWork

from .statement_log import WriteLog, sent_statements

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
DATABASE_KINDS = ("sqlite", "postgresql")


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


@pytest.fixture(params=DATABASE_KINDS)
def db_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def db_url(db_kind: str, fresh_database_url: Callable[[str], str]) -> str:
    return fresh_database_url(db_kind)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store_url(db_kind: str, migrated_database_url: Callable[[str], str]) -> str:
    return migrated_database_url(db_kind)


@pytest.fixture
def store(store_url: str, clock: FakeClock) -> Iterator[Store]:
    opened = Store.open(store_url, clock=clock)
    yield opened
    opened.close()


def save_one(
    uow: UnitOfWork,
    old: RunState | None,
    new: RunState,
    events: Sequence[tuple[Event, datetime]],
    commands: Sequence[Command],
    *,
    default_queue: str = "treadle.tasks",
) -> int:
    """Lock the run and save ``new`` (from ``old``) with one ``save_runs``, its commands
    written by the scheduler's command handlers; its new version."""
    versions = uow.lock_runs([new.run_id])
    change = RunChange(old, new, events, commands)
    write = CommandHandlers(default_queue).write
    return uow.save_runs([change], versions, write_commands=write).versions[new.run_id]


@pytest.fixture(name="save_one")
def save_one_fixture() -> Callable[..., int]:
    return save_one


@pytest.fixture
def statements(store: Store) -> Iterator[list[str]]:
    """Every statement the store's engine sends, whitespace collapsed."""
    with sent_statements(store.engine) as sent:
        yield sent


@pytest.fixture
def write_log(store: Store) -> Iterator[WriteLog]:
    log = WriteLog(store.engine)
    yield log
    log.close()


def with_items_execution(
    execution_id: int, task: str, count: int, *, scope: int = ROOT_SCOPE
) -> Execution:
    """A running with_items execution: a mix of finished, failed, running, waiting items."""
    units = []
    for i in range(count):
        if i % 4 == 0:
            unit = Unit(
                index=i,
                item={"host": f"web-{i}", "port": 8000 + i},
                status=TaskStatus.SUCCEEDED,
                attempt=1,
                result={"ok": True, "latency": i / 7, "tags": ["a", "b"]},
                started_at=T0 + timedelta(seconds=i),
                finished_at=T0 + timedelta(seconds=i, milliseconds=250),
                result_bytes=42,
            )
        elif i % 4 == 1:
            unit = Unit(
                index=i,
                item=f"item-{i}",
                status=TaskStatus.FAILED,
                attempt=3,
                error={"type": "ValueError", "message": f"bad item {i} ✗"},
                started_at=T0,
                finished_at=T0 + timedelta(minutes=1),
            )
        elif i % 4 == 2:
            unit = Unit(
                index=i,
                item=i,
                status=TaskStatus.RUNNING,
                attempt=2,
                started_at=T0,
                timer=f"run-1/{execution_id}/{i}/2/retry",
            )
        else:
            unit = Unit(index=i, item=None)
        units.append(unit)
    return Execution(
        id=execution_id,
        task=task,
        scope=scope,
        status=TaskStatus.RUNNING,
        started_at=T0,
        units=Units(units),
        with_items=True,
        next_unit=count * 3 // 4,
        in_flight=count // 4,
        done=count // 2,
    )


def realistic_state(run_id: str = "run-1", *, items: int = 100) -> RunState:
    """A run mid-flight: several executions, a with_items fan-out, timers, failures, joins."""
    executions = {
        1: Execution(
            id=1,
            task="start",
            scope=ROOT_SCOPE,
            status=TaskStatus.SUCCEEDED,
            started_at=T0,
            finished_at=T0 + timedelta(seconds=1),
            units=(
                Unit(
                    index=None,
                    status=TaskStatus.SUCCEEDED,
                    attempt=1,
                    result={"message": "héllo", "n": 1.5, "nested": {"z": [1, None, True]}},
                    started_at=T0,
                    finished_at=T0 + timedelta(seconds=1),
                    result_bytes=64,
                ),
            ),
            result={"message": "héllo", "n": 1.5, "nested": {"z": [1, None, True]}},
        ),
        2: with_items_execution(2, "fan_out", items),
        3: Execution(
            id=3,
            task="approve",
            scope=ROOT_SCOPE,
            status=TaskStatus.WAITING,
            started_at=T0,
            units=(
                Unit(
                    index=None,
                    status=TaskStatus.WAITING,
                    attempt=1,
                    inquiry_id="iq_0123456789abcdef",
                    timer="run-1/3/0/1/deadline",
                ),
            ),
            timer="run-1/3/deadline",
            inquiry_id="iq_fedcba9876543210",
            released_with={"approved": None},
        ),
        4: Execution(
            id=4,
            task="nested",
            scope=ROOT_SCOPE,
            status=TaskStatus.RUNNING,
            started_at=T0,
            units=(
                Unit(
                    index=None,
                    status=TaskStatus.RUNNING,
                    attempt=1,
                    child_run_id="run-1.4.0.1",
                ),
            ),
        ),
        5: Execution(
            id=5,
            task="branch_a",
            scope=4,
            status=TaskStatus.FAILED,
            started_at=T0,
            finished_at=T0 + timedelta(seconds=3),
            units=(Unit(index=None, status=TaskStatus.FAILED, attempt=1),),
            error={"type": "Boom", "message": "it broke", "details": {"code": 7}},
        ),
    }
    # the core keeps units in a chunked Units list; so does what the store loads
    executions = {key: replace(e, units=Units(e.units)) for key, e in executions.items()}
    timers = {
        "run-1/2/2/2/retry": Timer(
            "run-1/2/2/2/retry", TimerKind.RETRY, T0 + timedelta(seconds=30), 2, 2, 2
        ),
        "run-1/3/deadline": Timer(
            "run-1/3/deadline", TimerKind.DEADLINE, T0 + timedelta(hours=1), 3
        ),
    }
    return RunState(
        run_id=run_id,
        workflow="examples.fan_out",
        status=RunStatus.RUNNING,
        context=RunContext(
            parameters={"hosts": ["a", "b"], "count": 3, "dry_run": False},
            config={"region": "eu-west-1"},
            keystore={"token": "s3cr3t"},
            identity={"user": "ada"},
            secrets=("s3cr3t",),
            seed=123456789,
            limits=Limits(max_depth=4, max_items=500),
            depth=1,
            parent_run_id="parent-9",
            parent_attempt_id="parent-9/2/0/1",
        ),
        created_at=T0 - timedelta(seconds=5),
        started_at=T0,
        vars={"counter": 2, "names": ["x", "y"], "empty": {}},
        executions=executions,
        latest={"start": 1, "fan_out": 2, "approve": 3, "nested": 4, "branch_a": 5},
        active={ROOT_SCOPE: 3, 4: 1},
        joins={"finish": (1, 3)},
        failures={4: (Failure("branch_a", 5, TaskStatus.FAILED, {"type": "Boom"}),)},
        timers=timers,
        next_execution=6,
        uuid_counter=4,
        context_bytes=2048,
    )


def change_units(state: RunState, execution_id: int, positions: list[int]) -> RunState:
    """A new state as the core would make it: only the named units are new objects."""
    execution = state.executions[execution_id]
    units = execution.units
    for position in positions:
        changed = replace(
            units[position],
            status=TaskStatus.SUCCEEDED,
            result={"changed": position},
            finished_at=T0 + timedelta(hours=1),
        )
        units = units.replaced(position, changed)
    new_execution = replace(execution, units=units, done=execution.done + len(positions))
    return replace(state, executions={**state.executions, execution_id: new_execution})


def dispatch(
    run_id: str,
    execution: int,
    position: int,
    attempt: int = 1,
    *,
    item_index: int | None = None,
    timeout: float | None = None,
    queue: str | None = None,
) -> DispatchTask:
    return DispatchTask(
        TaskDispatch(
            attempt_id=f"{run_id}/{execution}/{position}/{attempt}",
            run_id=run_id,
            task="fan_out",
            execution=execution,
            item_index=item_index,
            attempt=attempt,
            action_ref="core.echo",
            input={"message": f"item {position}"},
            timeout_seconds=timeout,
            queue=queue,
        )
    )


class Builders:
    """The state and command builders above, handed to tests as the ``build`` fixture."""

    t0 = T0
    realistic_state = staticmethod(realistic_state)
    with_items_execution = staticmethod(with_items_execution)
    change_units = staticmethod(change_units)
    dispatch = staticmethod(dispatch)


@pytest.fixture
def build() -> Builders:
    return Builders()


@pytest.fixture
def pg_store(migrated_database_url: Callable[[str], str], clock: FakeClock) -> Iterator[Store]:
    """A store on PostgreSQL only, for row locks and SKIP LOCKED (SQLite has neither)."""
    opened = Store.open(migrated_database_url("postgresql"), clock=clock)
    yield opened
    opened.close()
