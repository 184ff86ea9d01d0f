"""The core's part of flow control: each dispatch's priority and its rendered claims.

Priority: the task's own, else the run's (given at start), else its workflow's, else 5.
Claims: the workflow's ``concurrency_key`` (held by the run), the task's (held by the
attempt) and the task's ``rate_limit`` (keyed by the action unless it names a key), each
rendered with the task's context, so an item or a parameter can be the key.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime

from treadle.common.flow import ClaimKind, ClaimScope, FlowClaim
from treadle.common.graph import compile_graph
from treadle.common.loader import load_workflow_text
from treadle.scheduler.core.commands import DispatchTask
from treadle.scheduler.core.decide import decide
from treadle.scheduler.core.events import RunRequested
from treadle.scheduler.core.state import RunContext, initial_state

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def dispatches(text: str, **context: object) -> list[DispatchTask]:
    spec = load_workflow_text(textwrap.dedent(text), "wf.yaml")
    graph = compile_graph(spec)
    state = initial_state("r-1", graph.ref, T0)
    decision = decide(state, RunRequested(context=RunContext(**context)), graph, T0)  # type: ignore[arg-type]
    return [c for c in decision.commands if isinstance(c, DispatchTask)]


PRIORITIES = """\
ref: test.priorities
priority: 3
tasks:
  - {name: own, action: core.noop, priority: 8}
  - {name: inherits, action: core.noop}
"""


def test_a_task_has_its_own_priority_else_the_runs_else_the_workflows_else_5() -> None:
    by_task = {d.dispatch.task: d.priority for d in dispatches(PRIORITIES)}
    assert by_task == {"own": 8, "inherits": 3}
    started_with = {d.dispatch.task: d.priority for d in dispatches(PRIORITIES, priority=6)}
    assert started_with == {"own": 8, "inherits": 6}
    plain = dispatches("ref: test.plain\ntasks:\n  - {name: a, action: core.noop}\n")
    assert [d.priority for d in plain] == [5]


def test_claims_are_rendered_per_item_with_the_workflows_key_held_by_the_run() -> None:
    [first, second] = dispatches(
        """\
        ref: test.claims
        parameters:
          tenant: {type: string}
        concurrency_key: {key: "tenant-{{ parameters.tenant }}", limit: 3}
        tasks:
          - name: call
            action: core.echo
            with_items: "{{ ['eu', 'us'] }}"
            concurrency_key: {key: "region-{{ item }}", limit: 1}
            rate_limit: {limit: 10, period: 1m}
        """,
        parameters={"tenant": "acme"},
    )
    run_key = FlowClaim(
        kind=ClaimKind.CONCURRENCY, key="tenant-acme", limit=3, scope=ClaimScope.RUN
    )
    rate = FlowClaim(kind=ClaimKind.RATE, key="action:core.echo", limit=10, period_seconds=60)
    assert first.claims == (
        run_key,
        FlowClaim(kind=ClaimKind.CONCURRENCY, key="region-eu", limit=1),
        rate,
    )
    assert second.claims[1].key == "region-us"


def test_a_rate_limit_may_name_its_own_key() -> None:
    [dispatch] = dispatches(
        """\
        ref: test.keyed_rate
        tasks:
          - name: call
            action: core.echo
            rate_limit: {key: "vendor-api", limit: 5, period: 1s}
        """
    )
    assert dispatch.claims == (
        FlowClaim(kind=ClaimKind.RATE, key="vendor-api", limit=5, period_seconds=1.0),
    )


def test_without_flow_fields_a_dispatch_claims_nothing() -> None:
    [dispatch] = dispatches("ref: test.none\ntasks:\n  - {name: a, action: core.noop}\n")
    assert dispatch.claims == ()
