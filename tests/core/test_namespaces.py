"""What templates can read: ``task``, ``inquiry``, ``vars`` and ``system``, built lazily."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta, timezone

import pytest

from treadle.common.expr import TemplateEngine
from treadle.common.graph import Graph, compile_graph
from treadle.common.loader import load_workflow_text
from treadle.common.statuses import RunStatus, TaskStatus
from treadle.scheduler.core.namespaces import TaskView, build_context, iso
from treadle.scheduler.core.state import (
    Execution,
    RunContext,
    Unit,
    Units,
    evolve,
    initial_state,
)
from treadle.scheduler.core.transaction import Tx
from treadle.scheduler.rehearsal import rehearse, scripted

T0 = datetime(2026, 1, 1, tzinfo=UTC)
ENGINE = TemplateEngine()


def graph_of(text: str) -> Graph:
    return compile_graph(load_workflow_text(textwrap.dedent(text), "wf.yaml"))


GRAPH = graph_of(
    """\
    ref: test.ns
    tasks:
      - {name: fetch, action: core.noop}
    """
)


def tx_with(*executions: Execution, **changes: object) -> Tx:
    state = evolve(
        initial_state("r-1", "test.ns", T0),
        status=RunStatus.RUNNING,
        started_at=T0,
        executions={e.id: e for e in executions},
        latest={e.task: e.id for e in executions},
        **changes,
    )
    return Tx(state, GRAPH, T0 + timedelta(seconds=90), ENGINE)


def done(task: str = "fetch", **changes: object) -> Execution:
    execution = Execution(
        id=1,
        task=task,
        scope=0,
        status=TaskStatus.SUCCEEDED,
        started_at=T0,
        finished_at=T0 + timedelta(seconds=2),
        units=Units([Unit(index=None, status=TaskStatus.SUCCEEDED, result={"n": 1})]),
        result={"n": 1},
    )
    return evolve(execution, **changes)


def test_iso_is_utc_with_a_z() -> None:
    assert iso(T0) == "2026-01-01T00:00:00Z"
    assert iso(datetime(2026, 1, 1, 2, tzinfo=timezone(timedelta(hours=2)))) == (
        "2026-01-01T00:00:00Z"
    )
    assert iso(None) is None


def test_a_task_view_has_the_documented_keys() -> None:
    view = TaskView(done())
    assert list(view) == [
        "status",
        "result",
        "results",
        "error",
        "failed_items",
        "started_at",
        "finished_at",
    ]
    assert dict(view) == {
        "status": "succeeded",
        "result": {"n": 1},
        "results": {"n": 1},
        "error": None,
        "failed_items": [],
        "started_at": "2026-01-01T00:00:00Z",
        "finished_at": "2026-01-01T00:00:02Z",
    }
    with pytest.raises(KeyError):
        view["inquiry_id"]
    with pytest.raises(KeyError):
        view["nonsense"]


def test_a_task_view_of_with_items_lists_failed_items() -> None:
    units = Units(
        [
            Unit(index=0, item="a", status=TaskStatus.SUCCEEDED, result="A"),
            Unit(index=1, item="b", status=TaskStatus.FAILED, error={"type": "X", "message": "m"}),
            Unit(index=2, item="c", status=TaskStatus.TIMED_OUT, error={"type": "Timeout"}),
        ]
    )
    view = TaskView(
        done(status=TaskStatus.FAILED, units=units, with_items=True, result=["A", None, None])
    )
    assert view["results"] == ["A", None, None]
    assert view["failed_items"] == [
        {"index": 1, "item": "b", "error": {"type": "X", "message": "m"}},
        {"index": 2, "item": "c", "error": {"type": "Timeout"}},
    ]


def test_a_task_view_of_an_inquiry_names_it() -> None:
    view = TaskView(done(inquiry_id="iq_1"))
    assert "inquiry_id" in list(view)
    assert view["inquiry_id"] == "iq_1"


def test_the_task_namespace_holds_tasks_that_ran() -> None:
    context = build_context(tx_with(done()))
    assert list(context["task"]) == ["fetch"]
    assert context["task"]["fetch"]["result"] == {"n": 1}
    with pytest.raises(KeyError):
        context["task"]["never"]
    assert ENGINE.render("{{ task.fetch.result.n + 1 }}", context) == 2


def test_the_inquiry_namespace_holds_answers() -> None:
    answered = done(result={"response": {"ok": True}}, inquiry_id="iq_1")
    context = build_context(tx_with(answered))
    assert context["inquiry"]["fetch"] == {"response": {"ok": True}}
    assert ENGINE.render("{{ inquiry.fetch.response.ok }}", context) is True
    released = done(result=None, released_with={"response": {"go": 1}})
    assert build_context(tx_with(released))["inquiry"]["fetch"] == {"response": {"go": 1}}
    plain = build_context(tx_with(done()))["inquiry"]
    assert list(plain) == []
    with pytest.raises(KeyError):
        plain["fetch"]


def test_the_vars_view_is_live() -> None:
    tx = tx_with(vars={"a": 1})
    context = build_context(tx)
    assert dict(context["vars"]) == {"a": 1}
    tx.set_var("b", 2)
    assert dict(context["workflow"]) == {"a": 1, "b": 2}
    assert ENGINE.render("{{ variables.a + vars.b }}", context) == 3
    assert tx.base.vars == {"a": 1}  # the frozen state is untouched


def test_the_system_namespace_and_helpers() -> None:
    tx = tx_with(context=RunContext(seed=3, depth=2, identity={"user": "ada"}))
    context = build_context(tx)
    assert context["system"] == {
        "run_id": "r-1",
        "workflow": "test.ns",
        "workflow_start": "2026-01-01T00:00:00Z",
        "timestamp": int((T0 + timedelta(seconds=90)).timestamp()),
        "identity": {"user": "ada"},
        "depth": 2,
        "parent_run_id": None,
        "seed": 3,
        "schedule": None,  # {name, fire_time} for a run a schedule started
    }
    assert ENGINE.render("{{ now() }}", context) == "2026-01-01T00:01:30Z"
    first, second = ENGINE.render("{{ uuid() }}", context), ENGINE.render("{{ uuid() }}", context)
    assert first != second
    assert tx.uuid_counter == 2
    assert tx.freeze().uuid_counter == 2


def test_status_functions_follow_the_task_being_decided() -> None:
    tx = tx_with()
    failed = done(status=TaskStatus.FAILED)
    context = build_context(tx, current=failed)
    assert (context["succeeded"](), context["failed"](), context["timed_out"]()) == (
        False,
        True,
        False,
    )
    assert context["result"]() == {"n": 1}
    outside = build_context(tx)
    assert outside["succeeded"]() is False
    assert outside["result"]() is None


def test_publish_sees_earlier_values_of_the_same_transition_in_a_real_run() -> None:
    graph = graph_of(
        """\
        ref: test.live
        tasks:
          - name: fetch
            action: core.noop
            next:
              - publish:
                  - a: "{{ result() }}"
                  - b: "{{ vars.a + 1 }}"
                when: "{{ succeeded() }}"
              - when: "{{ vars.b == 6 }}"
                do: [seen]
          - {name: seen, action: core.noop}
        """
    )
    record = rehearse(graph, script=scripted({"fetch": {"result": 5}}))
    assert record.state.vars == {"a": 5, "b": 6}
    assert record.sequence == ["fetch", "seen"]
