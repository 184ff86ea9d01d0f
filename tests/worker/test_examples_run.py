"""Every example workflow, run by the real scheduler core with the real worker ``execute``.

The scheduler's rehearsal driver feeds the core its events in memory; each dispatch it
makes is executed for real by :func:`treadle.worker.execute.execute` against the shipped
packs, so these tests check the examples do what their comments and README promise.
"""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from treadle.common.messages import TaskDispatch
from treadle.common.statuses import AttemptStatus
from treadle.worker.execute import RunnerSettings, execute

loader = pytest.importorskip("treadle.common.loader")
rehearsal = pytest.importorskip("treadle.scheduler.rehearsal")
graph_module = pytest.importorskip("treadle.common.graph")
params_module = pytest.importorskip("treadle.common.params")

PACKS = Path(__file__).resolve().parents[2] / "packs"


@pytest.fixture(scope="module")
def catalog():
    loaded = loader.load_packs([str(PACKS)])
    assert [str(i) for i in loaded.issues] == []
    return loaded


def _actions_by_task(tasks, found=None) -> dict[str, str | None]:
    found = {} if found is None else found
    for task in tasks:
        found[task.name] = task.action
        _actions_by_task(task.tasks, found)
    return found


def run(catalog, ref: str, parameters: dict[str, Any] | None = None, **options: Any):
    """Rehearse workflow ``ref``: every dispatch runs for real, taking its real time."""
    spec = catalog.workflow(ref)
    graph = graph_module.compile_graph(spec, catalog.kind_of)
    actions = _actions_by_task(spec.tasks)
    run_id = f"r-{uuid.uuid4().hex[:8]}"

    def script(task: str, item: int | None, attempt: int, given: Any):
        dispatch = TaskDispatch(
            attempt_id=f"{run_id}/{task}/{item}/{attempt}",
            run_id=run_id,
            task=task,
            execution=1,
            attempt=attempt,
            action_ref=actions[task],
            input=dict(given),
        )
        started = time.monotonic()
        result = execute(dispatch, catalog, RunnerSettings())
        took = timedelta(seconds=time.monotonic() - started)
        if result.outcome is AttemptStatus.SUCCEEDED:
            return rehearsal.ScriptedOutcome(result=result.result, duration=took)
        return rehearsal.ScriptedOutcome(error=result.error.as_dict(), duration=took)

    resolved = params_module.resolve_parameters(spec.parameters, parameters or {})
    return rehearsal.rehearse(graph, parameters=resolved, script=script, run_id=run_id, **options)


def _done(record) -> dict[str, Any]:
    assert record.status.value == "succeeded", record.state.error
    return record.state.output


def test_hello_world(catalog):
    assert _done(run(catalog, "examples.hello_world")) == {"greeting": "Hello, world!"}
    assert _done(run(catalog, "examples.hello_world", {"name": "Ada"})) == {
        "greeting": "Hello, Ada!"
    }


def test_sequential_publish(catalog):
    assert _done(run(catalog, "examples.sequential_publish")) == {
        "total": 5,
        "doubled": 10,
        "message": "(2 + 3) * 2 = 10",
    }


def test_branching_fires_every_transition_that_holds(catalog):
    odd = run(catalog, "examples.branching")
    big_even = run(catalog, "examples.branching", {"number": 102})

    assert _done(odd) == {"kind": "odd"}
    assert odd.sequence == ["inspect", "odd"]
    assert _done(big_even) == {"kind": "even"}
    assert big_even.sequence == ["inspect", "even", "big"]


def test_parallel(catalog):
    record = run(catalog, "examples.parallel")

    assert _done(record) == {"summary": "disk ok; sum is 42; slept 0.2s"}
    assert record.sequence[-1] == "summary"


def test_join_all(catalog):
    record = run(catalog, "examples.join_all")

    assert _done(record) == {"combined": 6}
    assert record.sequence.count("progress") == 3
    assert record.sequence.count("combine") == 1
    assert record.sequence[-1] == "combine"


def test_with_items(catalog):
    record = run(catalog, "examples.with_items")

    assert _done(record) == {
        "greetings": [
            f"Hello, {n}! (item {i})"
            for i, n in enumerate(["Ada", "Grace", "Linus", "Margaret", "Barbara"])
        ],
        "pairs": ["Hello, Ada and Grace!", "Hello, Linus and Margaret!", "Hello, Barbara!"],
    }
    assert sum(1 for d in record.dispatched if d.dispatch.task == "greet_pairs") == 3


def test_retry_backoff(catalog, tmp_path):
    record = run(catalog, "examples.retry_backoff", {"counter_dir": str(tmp_path)})

    assert _done(record) == {"calls": 3}
    attempts = [d.dispatch.attempt for d in record.dispatched if d.dispatch.task == "call_flaky"]
    assert attempts == [1, 2, 3]


def test_timeout_takes_the_timed_out_branch(catalog):
    assert _done(run(catalog, "examples.timeout")) == {
        "outcome": "timed out",
        "message": "slow_step was timed_out after its 1 second timeout",
    }


def test_delay(catalog):
    assert _done(run(catalog, "examples.delay")) == {
        "first": "first",
        "second": "second, half a second later",
    }


def test_nested_workflow_uses_the_child_output(catalog):
    child = _done(run(catalog, "examples.hello_world", {"name": "nested world"}))

    record = run(catalog, "examples.nested_workflow", child_outcomes={"greet": {"result": child}})

    assert len(record.children) == 1
    assert _done(record) == {
        "child_greeting": "Hello, nested world!",
        "message": "The child run said: Hello, nested world!",
    }


def test_inquiry(catalog):
    unanswered = run(catalog, "examples.inquiry")  # the fake clock runs past the timeout
    approved = run(catalog, "examples.inquiry", answers={"ask_approval": {"approved": True}})
    rejected = run(catalog, "examples.inquiry", answers={"ask_approval": {"approved": False}})

    assert len(unanswered.inquiries) == 1
    assert unanswered.task_status("ask_approval") == "timed_out"
    assert _done(unanswered) == {"decision": "nobody answered"}
    assert _done(approved) == {"decision": "approved"}
    assert "deploy" in approved.sequence
    assert _done(rejected) == {"decision": "rejected"}
    assert "deploy" not in rejected.sequence


def test_legacy_fields(catalog):
    big = run(catalog, "examples.legacy_fields")
    small = run(catalog, "examples.legacy_fields", {"value": 5})

    assert _done(big) == {"size": "big", "recovered": True}
    assert big.sequence == ["measure", "big", "attempt", "recover", "finish"]
    assert _done(small)["size"] == "small"


def test_loop(catalog):
    record = run(catalog, "examples.loop", {"times": 4})

    assert _done(record) == {"count": 4}
    assert record.sequence == ["start", "increment", "increment", "increment", "increment", "done"]


def test_when_guard(catalog):
    assert _done(run(catalog, "examples.when_guard")) == {
        "notify_status": "skipped",
        "archive_status": "succeeded",
    }
    assert (
        _done(run(catalog, "examples.when_guard", {"notify": True}))["notify_status"] == "succeeded"
    )


def test_handled_failure(catalog):
    assert _done(run(catalog, "examples.handled_failure")) == {
        "recovered": "recovered from ActionFailed: the database is down (pretend)"
    }


def test_templates(catalog):
    output = _done(run(catalog, "examples.templates"))

    assert output["count"] == 3
    assert output["as_json"] == '["alpha","beta","gamma"]'
    assert output["message"].endswith("has 3 words: alpha, beta, gamma; the first is alpha")
    assert uuid.UUID(output["id"])
