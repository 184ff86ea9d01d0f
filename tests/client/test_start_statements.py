"""What starting a run sends to PostgreSQL: each statement is a round trip for the client
and the server, and a hundred runs started at once are a hundred times that.

The run a start inserts is not locked again (nobody else sees it before commit), a taken
idempotency key is found without a savepoint, and the schedulers' wake-up notice rides on
the insert of the run's first dispatches instead of a NOTIFY of its own. Each is checked
with what a user sees too: the run, the duplicate refused, the notice received.
"""

from __future__ import annotations

import select as select_module

import pytest
from sqlalchemy import create_engine

from treadle import Client
from treadle.common.loader import load_workflow_text

FLOW = """\
ref: demo.single
tasks:
  - {name: only, action: core.noop}
"""


@pytest.fixture
def started(client: Client) -> Client:
    client.register(load_workflow_text(FLOW, "demo/single.yaml"))
    client.start("demo.single")  # the first start reads what later ones keep
    return client


def test_a_start_neither_locks_its_new_run_nor_opens_a_savepoint(
    started: Client, statements: list[str]
) -> None:
    statements.clear()
    run_id = started.start("demo.single")

    assert not [s for s in statements if "FOR UPDATE" in s]
    assert not [s for s in statements if s.startswith(("SAVEPOINT", "RELEASE SAVEPOINT"))]
    assert [(t.name, t.status.value) for t in started.get(run_id).tasks] == [("only", "running")]


def test_a_taken_idempotency_key_returns_the_first_run_and_stores_nothing_more(
    started: Client,
) -> None:
    first = started.start("demo.single", idempotency_key="order-7")
    before = len(started.list_runs().runs)
    assert started.start("demo.single", idempotency_key="order-7") == first
    assert len(started.list_runs().runs) == before


def test_the_schedulers_are_woken_by_a_notice_riding_on_the_dispatch_insert(
    started: Client, database_url: str, statements: list[str]
) -> None:
    engine = create_engine(database_url)
    listener = engine.raw_connection()
    try:
        connection = listener.driver_connection
        connection.autocommit = True
        connection.cursor().execute("LISTEN treadle_outbox")
        statements.clear()
        started.start("demo.single")
        ready, _, _ = select_module.select([connection], [], [], 5)
        assert ready, "no notice within 5 s"
        connection.poll()
        assert [n.channel for n in connection.notifies] == ["treadle_outbox"]
    finally:
        listener.close()
        engine.dispose()
    assert not [s for s in statements if s.startswith("NOTIFY")]
    [insert] = [s for s in statements if "INSERT INTO outbox" in s]
    assert "pg_notify('treadle_outbox'" in insert
