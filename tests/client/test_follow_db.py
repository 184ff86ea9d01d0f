"""Following a run from the database (``treadle run --distributed``): when to stop, what to say.

The follower's clock and sleep are fakes here, so a stall of many seconds costs none.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator

import pytest

from treadle.cli.follow_db import DatabaseFollower, stall_hint_after
from treadle.client import Client
from treadle.common.catalog import Catalog
from treadle.common.loader import load_workflow_text
from treadle.common.settings import Settings
from treadle.common.spec import WorkflowSpec
from treadle.embedded import EmbeddedRunner

pytestmark = pytest.mark.services

CHILD_ASKS = """\
ref: demo.child
tasks:
  - name: approve
    action: core.ask
    input: {prompt: "ok?"}
"""
PARENT = """\
ref: demo.parent
tasks:
  - name: nested
    action: demo.child
"""
ECHO = """\
ref: demo.echo
tasks:
  - name: say
    action: core.echo
    input: {message: hi}
"""


def workflow(text: str) -> WorkflowSpec:
    return load_workflow_text(textwrap.dedent(text), "<test>")


class FakeTime:
    """A monotonic clock that moves only when the follower sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds
        self.slept += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def follower(client: Client, fake_time: FakeTime) -> DatabaseFollower:
    return DatabaseFollower(
        client.store, database=client.database, clock=fake_time.clock, sleep=fake_time.sleep
    )


@pytest.fixture
def parent_runner(database_url: str, shipped_catalog: Catalog) -> Iterator[EmbeddedRunner]:
    catalog = shipped_catalog.merged(Catalog(workflows={"demo.child": workflow(CHILD_ASKS)}))
    with EmbeddedRunner.open(Settings(database_url=database_url), catalog) as runner:
        yield runner


def test_a_run_whose_child_run_waits_on_an_inquiry_only_waits(
    client: Client,
    parent_runner: EmbeddedRunner,
    follower: DatabaseFollower,
    fake_time: FakeTime,
) -> None:
    client.register(workflow(PARENT), catalog=parent_runner.catalog)
    run_id = client.start("demo.parent")
    assert parent_runner.follow(run_id).waiting

    followed = follower.follow(run_id, wait_timeout=60)
    assert followed.waiting
    assert not followed.gave_up
    assert fake_time.slept == 0
    assert followed.state.executions[1].units[0].child_run_id is not None


def test_a_run_nobody_relays_is_explained_once_then_given_up_on(
    client: Client, follower: DatabaseFollower, fake_time: FakeTime
) -> None:
    client.register(workflow(ECHO))
    run_id = client.start("demo.echo")
    hints: list[str] = []
    seen: list[str] = []

    followed = follower.follow(
        run_id,
        on_change=lambda state: seen.append(state.status.value),
        on_stall=hints.append,
        wait_timeout=35,
        stall_after=10,
    )
    assert followed.gave_up
    assert not followed.waiting
    assert followed.state.status.value == "running"
    assert seen == ["running"]
    assert hints == [
        f"no scheduler seems to be running against {client.database}: 1 message(s) are still "
        "waiting in its outbox; start `treadle scheduler` with the same TREADLE_DATABASE_URL"
    ]
    assert fake_time.slept == pytest.approx(35)


def test_a_dispatch_no_worker_takes_names_its_queue(
    client: Client, runner: EmbeddedRunner, follower: DatabaseFollower
) -> None:
    client.register(workflow(ECHO))
    run_id = client.start("demo.echo")
    runner.relay.drain()  # relayed: the attempt is queued, its result not yet applied
    hints: list[str] = []
    follower.follow(run_id, on_stall=hints.append, wait_timeout=12, stall_after=10)
    assert hints == [
        "no worker has started core.echo yet; is a `treadle worker --queues treadle.tasks` "
        "running on the same broker?"
    ]


def test_the_hint_comes_sooner_under_a_short_wait_timeout() -> None:
    assert stall_hint_after(None) == 10
    assert stall_hint_after(600) == 10
    assert stall_hint_after(4) == 2
