"""Concurrency keys, rate limits and priorities, end to end in one process (SQLite).

The action records when it really ran (wall-clock start and end, from the worker thread);
the tests read those intervals back and check what the limits promise: how many ran at
once, how many started per window, which went first. The sleeps are the actions' work,
not the tests' waiting.
"""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from treadle.common.spec import ActionSpec, ParameterSpec, RunnerType
from treadle.scheduler.service.starting import RunOptions
from treadle.scheduler.store.flow_tables import flow_grants, flow_slots

TRACK = """\
import time


def track(seconds=0.0):
    start = time.time()
    time.sleep(seconds)
    return {"start": start, "end": time.time()}
"""


@pytest.fixture
def tracked(harness: Any, tmp_path: Path) -> Any:
    """The harness with ``tests.track`` (sleeps, returns when it ran) in its catalog."""
    folder = tmp_path / "actions"
    folder.mkdir()
    (folder / "track.py").write_text(TRACK)
    harness.catalog.actions["tests.track"] = ActionSpec(
        ref="tests.track",
        runner_type=RunnerType.PYTHON,
        entry_point="track.py:track",
        base_dir=str(folder),
        parameters=(
            ParameterSpec(name="seconds", schema_={"type": "number"}, has_default=True, default=0),
        ),
    )
    return harness


def intervals(harness: Any, runner: Any, run_id: str, task: str) -> list[tuple[float, float]]:
    document = harness.document(runner, run_id)
    execution = harness.task(document, task)
    with runner.store.unit_of_work() as uow:
        from treadle.scheduler.service.run_document import item_page

        page = item_page(uow, run_id, task, limit=1000)
    results = (
        [item["result"] for item in page["items"]]
        if execution.get("items_summary")
        else [execution["result"]]
    )
    return [(r["start"], r["end"]) for r in results]


def most_at_once(spans: list[tuple[float, float]]) -> int:
    edges = sorted([(start, 1) for start, _ in spans] + [(end, -1) for _, end in spans])
    running = best = 0
    for _, step in edges:
        running += step
        best = max(best, running)
    return best


KEYED = """\
ref: tests.keyed
parameters:
  customer: {type: string}
  count: {type: integer, default: 4}
  seconds: {type: number, default: 0.3}
tasks:
  - name: work
    action: tests.track
    with_items: "{{ range(parameters.count) | list }}"
    concurrency_key: {key: "customer-{{ parameters.customer }}", limit: 2}
    input: {seconds: "{{ parameters.seconds }}"}
"""


def test_a_concurrency_key_caps_attempts_across_runs_and_says_what_waits(tracked: Any) -> None:
    spec = tracked.workflow(KEYED)
    runner = tracked.runner(worker_threads=8)
    first = runner.start(spec, {"customer": "acme"})
    second = runner.start(spec, {"customer": "acme"})
    other = runner.start(spec, {"customer": "globex"})

    # Started, not yet followed: two of acme's eight items hold its slots, six wait.
    waits = [
        wait
        for run_id in (first, second)
        for wait in tracked.document(runner, run_id).get("flow_waits", [])
    ]
    assert len(waits) == 6
    assert {wait["task"] for wait in waits} == {"work"}
    assert {wait["reason"] for wait in waits} == {
        "waits for concurrency key 'customer-acme' (limit 2 tasks): 2 held"
    }
    # globex's runs count apart: two of its four items wait for its own key.
    assert [w["reason"] for w in tracked.document(runner, other)["flow_waits"]] == 2 * [
        "waits for concurrency key 'customer-globex' (limit 2 tasks): 2 held"
    ]

    followed = runner.follow_all([first, second, other])
    assert {result.state.status for result in followed.values()} == {"succeeded"}
    acme = intervals(tracked, runner, first, "work") + intervals(tracked, runner, second, "work")
    globex = intervals(tracked, runner, other, "work")
    assert most_at_once(acme) == 2
    assert most_at_once(globex) == 2
    assert most_at_once(acme + globex) == 4
    assert "flow_waits" not in tracked.document(runner, first)


def test_a_workflow_concurrency_key_lets_one_run_hold_it_until_the_run_ends(
    tracked: Any,
) -> None:
    spec = tracked.workflow(
        """\
        ref: tests.one_at_a_time
        parameters:
          account: {type: string}
        concurrency_key: {key: "{{ parameters.account }}", limit: 1}
        tasks:
          - name: first
            action: tests.track
            input: {seconds: 0.2}
            next: [{do: second}]
          - name: second
            action: tests.track
            input: {seconds: 0.2}
        """
    )
    runner = tracked.runner()
    runs = [runner.start(spec, {"account": "a-1"}) for _ in range(3)]
    followed = runner.follow_all(runs)
    assert {result.state.status for result in followed.values()} == {"succeeded"}
    spans = []
    for run_id in runs:
        begin = intervals(tracked, runner, run_id, "first")[0][0]
        end = intervals(tracked, runner, run_id, "second")[0][1]
        spans.append((begin, end))
    assert most_at_once(spans) == 1  # whole runs, one after another


def test_a_rate_limit_starts_at_most_n_per_period_and_the_rest_wait(tracked: Any) -> None:
    spec = tracked.workflow(
        """\
        ref: tests.rated
        tasks:
          - name: call
            action: tests.track
            with_items: "{{ range(6) | list }}"
            rate_limit: {limit: 2, period: 0.5s}
        """
    )
    runner = tracked.runner()
    run_id, followed = tracked.run(runner, spec)
    assert followed.state.status == "succeeded"
    starts = sorted(start for start, _ in intervals(tracked, runner, run_id, "call"))
    # A sliding window: the third start comes a whole period after the first, and so on.
    gaps = [later - earlier for earlier, later in zip(starts, starts[2:], strict=False)]
    assert min(gaps) >= 0.45, gaps
    assert starts[-1] - starts[0] < 5  # and they did go, without failing


def test_released_work_goes_highest_priority_first(tracked: Any) -> None:
    spec = tracked.workflow(
        """\
        ref: tests.single_lane
        parameters:
          seconds: {type: number, default: 0.05}
        tasks:
          - name: work
            action: tests.track
            concurrency_key: {key: lane, limit: 1}
            input: {seconds: "{{ parameters.seconds }}"}
        """
    )
    runner = tracked.runner()
    blocker = runner.start(spec, {"seconds": 0.3})
    low = [runner.start(spec, {}, RunOptions(priority=1)) for _ in range(2)]
    high = runner.start(spec, {}, RunOptions(priority=9))
    normal = runner.start(spec, {})
    followed = runner.follow_all([blocker, *low, high, normal])
    assert {result.state.status for result in followed.values()} == {"succeeded"}
    order = sorted([*low, high, normal], key=lambda r: intervals(tracked, runner, r, "work")[0][0])
    assert order == [high, normal, *low]
    assert "flow_waits" not in tracked.document(runner, high)


def test_waiting_for_a_slot_is_not_charged_to_the_task_timeout(tracked: Any) -> None:
    spec = tracked.workflow(
        """\
        ref: tests.patient
        tasks:
          - name: work
            action: tests.track
            with_items: "{{ range(4) | list }}"
            concurrency_key: {key: narrow, limit: 1}
            timeout: 2
            input: {seconds: 0.6}
        """
    )
    runner = tracked.runner()
    run_id, followed = tracked.run(runner, spec)
    # 2.4 s of work one at a time, in a 2 s timeout each: each item has 1.4 s to spare
    # (a loaded machine once made a 0.3 s item overrun a 0.8 s timeout).
    assert followed.state.status == "succeeded"
    assert most_at_once(intervals(tracked, runner, run_id, "work")) == 1


def test_a_key_that_does_not_render_fails_the_task_naming_the_field(tracked: Any) -> None:
    spec = tracked.workflow(
        """\
        ref: tests.bad_key
        tasks:
          - name: work
            action: tests.track
            concurrency_key: {key: "{{ parameters.missing.deeper }}", limit: 1}
        """
    )
    runner = tracked.runner()
    run_id, followed = tracked.run(runner, spec)
    assert followed.state.status == "failed"
    error = tracked.task(tracked.document(runner, run_id), "work")["error"]
    assert error["type"] == "ExpressionError"
    assert error["message"].startswith("concurrency_key:")


def test_slots_and_grants_of_a_run_are_purged_with_it(tracked: Any) -> None:
    spec = tracked.workflow(
        textwrap.dedent(
            """\
            ref: tests.purged
            tasks:
              - name: work
                action: tests.track
                concurrency_key: {key: k, limit: 3}
                rate_limit: {limit: 5, period: 1h}
            """
        )
    )
    runner = tracked.runner()
    run_id, followed = tracked.run(runner, spec)
    assert followed.state.status == "succeeded"
    with runner.store.unit_of_work() as uow:
        count = uow.connection.execute(flow_grants.select()).all()
        assert len(count) == 1
        assert len(uow.connection.execute(flow_slots.select()).all()) == 1
        purged, _ = uow.purge_runs([[run_id]], datetime.now(UTC) + timedelta(days=1))
        assert purged == [run_id]
    with runner.store.unit_of_work() as uow:
        assert uow.connection.execute(flow_grants.select()).all() == []
        assert uow.connection.execute(flow_slots.select()).all() == []


def test_an_actions_own_rate_limit_is_shared_by_every_task_calling_it(tracked: Any) -> None:
    from treadle.common.spec import RateLimitSpec

    action = tracked.catalog.actions["tests.track"]
    limit = RateLimitSpec(limit=2, period=timedelta(seconds=0.5))
    tracked.catalog.actions["tests.track"] = action.model_copy(update={"rate_limit": limit})
    spec = tracked.workflow(
        """\
        ref: tests.shared_window
        tasks:
          - {name: one, action: tests.track, with_items: "{{ range(3) | list }}"}
          - {name: two, action: tests.track, with_items: "{{ range(3) | list }}"}
        """
    )
    runner = tracked.runner()
    pinned = runner.definitions.publish(spec, at=datetime.now(UTC))
    assert pinned.routes["tests.track"].rate_limit == limit  # pinned with the version
    run_id, followed = tracked.run(runner, spec)
    assert followed.state.status == "succeeded"
    starts = sorted(
        start for task in ("one", "two") for start, _ in intervals(tracked, runner, run_id, task)
    )
    gaps = [later - earlier for earlier, later in zip(starts, starts[2:], strict=False)]
    assert min(gaps) >= 0.45, gaps  # six calls of one action: two per half second
