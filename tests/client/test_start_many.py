"""``Client.start_many``: many runs of one workflow started in one transaction.

A hundred runs started with a hundred :meth:`Client.start` calls cost a hundred
transactions of about eight statements each; a batch decides the runs' first steps
together and saves them as the scheduler saves a batch of results, one statement per
table. Every parameter set is checked before anything is stored.
"""

from __future__ import annotations

import textwrap

import pytest

from treadle import Client
from treadle.common.errors import NotFound, ParameterError
from treadle.common.loader import load_workflow_text
from treadle.common.statuses import RunStatus
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.store import Store

pytestmark = pytest.mark.services

GREET = """\
ref: batch.greet
parameters:
  name: {type: string, required: true}
tasks:
  - name: say
    action: core.echo
    input: {message: "Hello, {{ parameters.name }}"}
output_map:
  greeting: "{{ task.say.result.message }}"
"""


@pytest.fixture
def greeting(client: Client) -> Client:
    client.register(load_workflow_text(textwrap.dedent(GREET), "batch/greet.yaml"))
    return client


def runs_in(store: Store) -> int:
    with store.snapshot() as uow:
        return len(uow.list_runs(limit=1000))


def test_each_run_of_a_batch_runs_with_its_own_parameters(
    greeting: Client, runner: EmbeddedRunner
) -> None:
    names = ["Ada", "Grace", "Edsger"]
    run_ids = greeting.start_many("batch.greet", [{"name": n} for n in names])

    assert len(set(run_ids)) == 3
    followed = runner.follow_all(run_ids)
    outputs = [followed[r].state.output for r in run_ids]
    assert [o["greeting"] for o in outputs] == [f"Hello, {n}" for n in names]  # in order
    assert {followed[r].state.status for r in run_ids} == {RunStatus.SUCCEEDED}
    seeds = {greeting.get(r).seed for r in run_ids}
    assert len(seeds) == 3  # each run its own seed


def test_a_batch_saves_its_runs_first_steps_in_one_statement_per_table(
    greeting: Client, statements: list[str]
) -> None:
    greeting.start("batch.greet", {"name": "warm"})  # the first start reads what later keep
    statements.clear()
    greeting.start("batch.greet", {"name": "one"})
    alone = list(statements)
    statements.clear()
    run_ids = greeting.start_many("batch.greet", [{"name": f"n{i}"} for i in range(20)])

    assert len(run_ids) == 20
    # Each run costs its own row's insert; everything else a single start sends (the
    # definition read, the keystore and pack configuration the contexts read, the save of
    # the first steps for every table, the audit entry) a batch sends once.
    inserts = [s for s in statements if s.startswith("INSERT INTO runs ")]
    assert len(inserts) == 20
    rest = sorted(s for s in statements if s not in inserts)
    assert rest == sorted(s for s in alone if not s.startswith("INSERT INTO runs "))
    assert len(rest) == 7


def test_a_bad_parameter_set_names_its_position_and_starts_nothing(
    greeting: Client, database_url: str
) -> None:
    store = Store.open(database_url, migrate=False)
    try:
        before = runs_in(store)
        with pytest.raises(ParameterError, match=r"parameters of 'batch.greet' \[2\]"):
            greeting.start_many("batch.greet", [{"name": "a"}, {"name": "b"}, {"name": 7}])
        with pytest.raises(NotFound):
            greeting.start_many("batch.nothing", [{}])
        assert runs_in(store) == before
    finally:
        store.close()


def test_a_batch_is_one_audit_entry_listing_its_runs(greeting: Client, database_url: str) -> None:
    run_ids = greeting.start_many("batch.greet", [{"name": "a"}, {"name": "b"}])
    store = Store.open(database_url, migrate=False)
    try:
        with store.snapshot() as uow:
            latest = uow.list_audit(workspace=None, limit=1)[0]
    finally:
        store.close()
    seen = (latest.action, latest.target, latest.outcome.value)
    assert seen == ("run.start", "batch.greet", "ok")
    assert latest.details == {"version": 1, "count": 2, "runs": run_ids}
