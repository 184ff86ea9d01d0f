"""``treadle.Client`` as an application uses it, against a real PostgreSQL database.

The client only writes to the database; an embedded runner on the same database plays the
scheduler and the workers (``runner.follow``), running the same relay, core and store code.
"""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Callable
from datetime import UTC, datetime

import pytest

from treadle import Client
from treadle.client import Registered, RunInfo
from treadle.common.catalog import Catalog
from treadle.common.errors import DefinitionError, NotFound, ParameterError, WaitTimeout
from treadle.common.loader import load_workflow_text
from treadle.common.spec import ActionSpec, WorkflowSpec
from treadle.common.statuses import InquiryStatus, RunStatus, TaskStatus
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.store import RunSummary

pytestmark = pytest.mark.services

GREET = """\
ref: demo.greet
parameters:
  name: {type: string, required: true}
  times: {type: integer, default: 1}
tasks:
  - name: say
    action: core.echo
    input: {message: "Hello, {{ parameters.name }} x{{ parameters.times }}"}
output_map:
  said: "{{ task.say.result.message }}"
"""

ASK = """\
ref: demo.ask
tasks:
  - name: approve
    action: core.ask
    input: {prompt: "ship it?", schema: {type: object}}
  - name: never
    action: core.noop
"""


def workflow(text: str) -> WorkflowSpec:
    return load_workflow_text(textwrap.dedent(text), "<test>")


def test_a_started_run_is_read_back_and_waited_for_to_its_output(
    client: Client, runner: EmbeddedRunner
) -> None:
    assert client.register(workflow(GREET)) == 1
    run_id = client.start("demo.greet", {"name": "Ada"})

    queued = client.get(run_id)  # nothing has run it yet: its first task is dispatched
    assert queued.id == run_id
    assert (queued.workflow, queued.version, queued.status) == ("demo.greet", 1, RunStatus.RUNNING)
    assert queued.parameters == {"name": "Ada", "times": 1}
    assert [(t.name, t.status) for t in queued.tasks] == [("say", TaskStatus.RUNNING)]
    assert not queued.ended

    runner.follow(run_id)
    done = client.wait(run_id, timeout=10)
    assert done.succeeded
    assert done.ended
    assert done.output == {"said": "Hello, Ada x1"}
    assert done.task("say").result == {"message": "Hello, Ada x1"}
    assert done.error is None
    assert done.created_at is not None
    assert done.finished_at is not None
    assert done.created_at <= done.finished_at <= datetime.now(UTC)
    assert client.get(run_id) == done


def test_bad_parameters_name_each_problem_and_store_nothing(
    client: Client, stored_runs: Callable[[], list[RunSummary]]
) -> None:
    client.register(workflow(GREET))
    with pytest.raises(ParameterError) as caught:
        client.start("demo.greet", {"times": "many", "extra": 1})
    message = str(caught.value)
    assert "'demo.greet'" in message
    for name in ("name", "times", "extra"):
        assert any(name in problem for problem in caught.value.problems), caught.value.problems
    assert stored_runs() == []


def test_one_idempotency_key_starts_one_run_even_when_starts_race(
    database_url: str, client: Client, stored_runs: Callable[[], list[RunSummary]]
) -> None:
    client.register(workflow(GREET))
    first = client.start("demo.greet", {"name": "Ada"}, idempotency_key="order-1")
    assert client.start("demo.greet", {"name": "Bob"}, idempotency_key="order-1") == first
    assert client.start("demo.greet", {"name": "Ada"}, idempotency_key="order-2") != first

    other = Client(database_url)  # a second application process, in effect
    try:
        for round_no in range(3):
            key = f"race-{round_no}"
            barrier = threading.Barrier(4)
            ids: list[str] = []

            threads = [
                threading.Thread(target=_start_after, args=(c, barrier, key, ids))
                for c in (client, client, other, other)
            ]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(timeout=30)
            assert len(ids) == 4
            assert len(set(ids)) == 1, ids
    finally:
        other.close()
    assert len(stored_runs()) == 2 + 3


def _start_after(chosen: Client, barrier: threading.Barrier, key: str, ids: list[str]) -> None:
    barrier.wait()
    ids.append(chosen.start("demo.greet", {"name": "Ada"}, idempotency_key=key))


def test_a_run_keeps_the_version_it_started_on(client: Client, runner: EmbeddedRunner) -> None:
    assert client.register(workflow(GREET)) == 1
    assert client.register(workflow(GREET)) == 1  # unchanged: no new version
    old_run = client.start("demo.greet", {"name": "Ada"})
    assert client.register(workflow(GREET.replace("Hello", "Goodbye"))) == 2
    new_run = client.start("demo.greet", {"name": "Ada"})
    pinned_run = client.start("demo.greet", {"name": "Ada"}, version=1)

    runner.follow_all([old_run, new_run, pinned_run])
    old, new, pinned = (client.wait(r, timeout=10) for r in (old_run, new_run, pinned_run))
    assert (old.version, old.output) == (1, {"said": "Hello, Ada x1"})
    assert (new.version, new.output) == (2, {"said": "Goodbye, Ada x1"})
    assert (pinned.version, pinned.output) == (1, {"said": "Hello, Ada x1"})


def test_registering_several_is_all_or_nothing_and_says_what_is_new(
    client: Client, shipped_catalog: Catalog
) -> None:
    greet, ask = workflow(GREET), workflow(ASK)
    assert client.register_all([greet]) == [Registered("demo.greet", 1, new=True)]
    assert client.register_all([greet, ask]) == [
        Registered("demo.greet", 1, new=False),
        Registered("demo.ask", 1, new=True),
    ]
    broken = workflow(GREET.replace("ref: demo.greet", "ref: demo.broken")).model_copy(
        update={"tasks": (workflow(GREET).tasks[0].model_copy(update={"input": {"nope": 1}}),)}
    )
    changed = workflow(ASK.replace("ship it?", "really?"))
    with pytest.raises(DefinitionError) as caught:
        client.register_all([changed, broken], catalog=shipped_catalog)
    assert "task 'say' gives input 'nope' that 'core.echo' does not declare" in str(caught.value)
    with pytest.raises(NotFound):
        client.start("demo.broken")
    assert client.register(workflow(ASK)) == 1  # the changed ask was not published either
    # Without the packs (and with nothing registered by a scheduler), an unknown action is
    # the workers' business: the definition is published.
    assert client.register(broken) == 1


def test_a_run_waiting_on_an_inquiry_is_canceled_and_canceling_an_ended_run_changes_nothing(
    client: Client, runner: EmbeddedRunner
) -> None:
    client.register(workflow(ASK))
    run_id = client.start("demo.ask")
    assert runner.follow(run_id).waiting

    waiting = client.get(run_id)
    assert waiting.status is RunStatus.RUNNING
    [inquiry] = waiting.pending_inquiries
    assert (inquiry.task, inquiry.prompt, inquiry.response_schema) == (
        "approve",
        "ship it?",
        {"type": "object"},
    )
    assert waiting.task("approve").status is TaskStatus.WAITING

    canceled = client.cancel(run_id, reason="changed my mind")
    assert canceled.status is RunStatus.CANCELED
    assert canceled.ended
    assert canceled.error == {"type": "Canceled", "message": "changed my mind"}
    assert canceled.task("approve").status is TaskStatus.CANCELED
    assert [i.status for i in canceled.inquiries] == [InquiryStatus.CANCELED]
    assert client.wait(run_id, timeout=5) == canceled

    assert client.cancel(run_id, reason="again") == canceled

    client.register(workflow(GREET))
    finished = client.start("demo.greet", {"name": "Ada"})
    runner.follow(finished)
    succeeded = client.wait(finished, timeout=10)
    assert client.cancel(finished) == succeeded


def test_unknown_workflows_versions_and_runs_are_named(client: Client) -> None:
    with pytest.raises(NotFound) as caught:
        client.start("demo.nope")
    assert str(caught.value) == (
        f"workflow 'demo.nope' has no published version in {client.database}; start "
        "`treadle scheduler` with its packs, or `treadle workflows register FILE`"
    )
    assert client.database.startswith("127.0.0.1:5432/treadle_test_")

    client.register(workflow(GREET))
    with pytest.raises(NotFound, match=r"'demo.greet' has no version 7 .*published versions: 1"):
        client.start("demo.greet", {"name": "Ada"}, version=7)
    with pytest.raises(NotFound, match="run r-missing not found"):
        client.get("r-missing")
    with pytest.raises(NotFound, match="run r-missing not found"):
        client.wait("r-missing", timeout=1)


def test_waiting_past_the_timeout_names_the_run_and_its_status(client: Client) -> None:
    client.register(workflow(GREET))
    run_id = client.start("demo.greet", {"name": "Ada"})  # nothing drives it
    with pytest.raises(WaitTimeout) as caught:
        client.wait(run_id, timeout=0.3)
    assert caught.value.run_id == run_id
    assert caught.value.status == "running"
    assert str(caught.value).startswith(f"run {run_id} is still running after 0.3 s")


def test_first_tasks_go_to_the_queue_their_action_was_registered_with(client: Client) -> None:
    routed = ActionSpec(ref="gpu.render", entry_point="render.py:run", queue="gpu")
    with client.store.unit_of_work() as uow:
        uow.register_catalog(Catalog(actions={routed.ref: routed}), datetime.now(UTC))
    client.register(
        workflow(
            """\
            ref: demo.render
            tasks:
              - name: render
                action: gpu.render
              - name: also
                action: core.noop
            """
        )
    )
    run_id = client.start("demo.render")
    with client.store.unit_of_work() as uow:
        queues = {a.action_ref: a.queue for a in uow.list_attempts(run_id)}
    assert queues == {"gpu.render": "gpu", "core.noop": "treadle.tasks"}


def test_run_info_is_a_frozen_typed_view(client: Client) -> None:
    client.register(workflow(GREET))
    info = client.get(client.start("demo.greet", {"name": "Ada"}))
    assert isinstance(info, RunInfo)
    with pytest.raises(ValueError, match="frozen"):
        info.status = RunStatus.FAILED  # type: ignore[misc]
    with pytest.raises(NotFound, match="has no execution of task 'nope'"):
        info.task("nope")
