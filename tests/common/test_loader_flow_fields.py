"""``priority``, ``concurrency_key`` and ``rate_limit`` in workflow YAML: read, or refused
with the file, line and field; a definition without them hashes as before."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from treadle.common.errors import DefinitionError
from treadle.common.loader import load_workflow_text
from treadle.common.spec import ConcurrencyKeySpec, RateLimitSpec


def load(text: str):  # type: ignore[no-untyped-def]
    return load_workflow_text(textwrap.dedent(text), "flow.yaml")


def problems(text: str) -> list[str]:
    with pytest.raises(DefinitionError) as caught:
        load(text)
    return [str(issue) for issue in caught.value.issues]


def test_the_fields_are_read_on_tasks_and_workflows() -> None:
    spec = load(
        """\
        ref: t.flow
        priority: 7
        concurrency_key: {key: "{{ parameters.customer }}", limit: 2}
        tasks:
          - name: a
            action: core.noop
            priority: 0
            concurrency_key: {key: gpu, limit: 4}
            rate_limit: {limit: 100, period: 1m, key: vendor}
        """
    )
    assert spec.priority == 7
    assert spec.concurrency_key == ConcurrencyKeySpec(key="{{ parameters.customer }}", limit=2)
    [task] = spec.tasks
    assert task.priority == 0
    assert task.concurrency_key == ConcurrencyKeySpec(key="gpu", limit=4)
    assert task.rate_limit == RateLimitSpec(limit=100, period=timedelta(minutes=1), key="vendor")


def test_bad_values_are_refused_at_their_line_and_field() -> None:
    found = problems(
        """\
        ref: t.flow
        priority: high
        tasks:
          - name: a
            action: core.noop
            priority: 12
            concurrency_key: {key: x}
            rate_limit: {limit: 0, period: 1m, every: 1}
          - name: b
            action: core.noop
            rate_limit: {limit: 3}
            concurrency_key: {key: "", limit: 1}
        """
    )
    assert found == [
        "flow.yaml:2:11: 'priority' of the workflow must be an integer from 0 (last) to 9 "
        "(first), not 'high'",
        "flow.yaml:6:15: 'priority' of task 'a' must be an integer from 0 (last) to 9 "
        "(first), not 12",
        "flow.yaml:7:5: 'concurrency_key.limit' of task 'a' is missing (a positive integer)",
        "flow.yaml:8:25: 'rate_limit.limit' of task 'a' must be a positive integer, not 0",
        "flow.yaml:8:40: unknown field 'every' in the rate_limit of task 'a'",
        "flow.yaml:11:5: the rate_limit of task 'b' needs a 'period' (e.g. 1m)",
        "flow.yaml:12:29: 'concurrency_key.key' of task 'b' must not be empty",
    ]


def test_a_definition_without_flow_fields_dumps_as_before() -> None:
    spec = load("ref: t.plain\ntasks:\n  - {name: a, action: core.noop}\n")
    dumped = spec.model_dump()
    assert not {"priority", "concurrency_key"} & set(dumped)
    assert not {"priority", "concurrency_key", "rate_limit"} & set(dumped["tasks"][0])


def test_an_action_file_may_declare_its_rate_limit(tmp_path: Path) -> None:
    from treadle.common.loader import load_packs

    pack = tmp_path / "vendor"
    (pack / "actions").mkdir(parents=True)
    (pack / "pack.yaml").write_text("ref: vendor\n")
    (pack / "actions" / "call.py").write_text("def run():\n    return {}\n")
    (pack / "actions" / "call.yaml").write_text(
        "name: call\nrunner_type: python\nentry_point: call.py:run\n"
        "rate_limit: {limit: 10, period: 1s}\n"
    )
    (pack / "actions" / "bad.yaml").write_text(
        "name: bad\nrunner_type: python\nentry_point: call.py:run\nrate_limit: {limit: 10}\n"
    )
    catalog = load_packs([pack])
    assert catalog.actions["vendor.call"].rate_limit == RateLimitSpec(
        limit=10, period=timedelta(seconds=1)
    )
    assert "vendor.bad" not in catalog.actions
    assert [str(issue).split(": ", 1)[1] for issue in catalog.issues] == [
        "the rate_limit of action 'vendor.bad' needs a 'period' (e.g. 1m)"
    ]
