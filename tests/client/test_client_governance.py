"""``treadle.Client`` on PostgreSQL: a chosen seed, a bad one, and an AOS plan the sandbox
refuses (nothing published, nothing started)."""

from __future__ import annotations

import json
import textwrap

import pytest

from treadle.client import Client
from treadle.common.dialects import import_aos
from treadle.common.errors import NotFound, ParameterError
from treadle.common.loader import load_workflow_text
from treadle.common.sandbox_report import Reason, SandboxRefusal

GREET = """\
ref: gov.greet
parameters:
  name: {type: string}
tasks:
  - name: hello
    action: core.echo
    input: {message: "hello {{ parameters.name }}"}
"""


def test_a_chosen_seed_is_the_runs_and_a_bad_one_starts_nothing(client: Client) -> None:
    client.register(load_workflow_text(textwrap.dedent(GREET), "greet.yaml"))

    run_id = client.start("gov.greet", {"name": "Ada"}, seed=2**63 - 1)
    with pytest.raises(ParameterError) as bad:
        client.start("gov.greet", {"name": "Ada"}, seed=-1)

    assert client.get(run_id).seed == 2**63 - 1
    assert bad.value.subject == "seed"
    assert bad.value.problems == ("seed must be an integer from 0 to 9223372036854775807, not -1",)
    assert [run.id for run in client.list_runs(workflow="gov.greet").runs] == [run_id]


def test_an_aos_plan_with_a_forbidden_skill_is_neither_published_nor_started(
    client: Client,
) -> None:
    plan = {"plan_id": "p1", "steps": [{"step_id": "s1", "skill": "eval_code", "params": {}}]}
    spec = import_aos(json.dumps(plan), "plan.json")

    with pytest.raises(SandboxRefusal) as refused:
        client.start_spec(spec, {})

    assert [(f.task, f.reason) for f in refused.value.report.violations] == [
        ("s1", Reason.FORBIDDEN_ACTION)
    ]
    assert client.list_runs(workflow=spec.ref).runs == ()
    with pytest.raises(NotFound):
        client.versions(spec.ref)
