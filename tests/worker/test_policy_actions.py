"""Policy actions (``policy: true``): the worker holds their results to the policy contract."""

from __future__ import annotations

from typing import Any

import pytest

from treadle.common.statuses import AttemptStatus

from .conftest import PythonActionFactory, Worker

POLICY = """
def main(result):
    return result
"""


@pytest.fixture
def policy(python_action: PythonActionFactory, worker: Worker) -> str:
    spec = python_action(POLICY, parameters={"result": {}})
    worker.add(spec.model_copy(update={"policy": True}))
    return spec.ref


@pytest.mark.parametrize("decision", ["allow", "require_approval"])
def test_allow_and_require_approval_succeed_with_the_result(
    worker: Worker, policy: str, decision: str
) -> None:
    returned = {"decision": decision, "reason": "why"}
    outcome = worker.run(policy, {"result": returned})
    assert (outcome.outcome, outcome.result) == (AttemptStatus.SUCCEEDED, returned)


def test_deny_fails_the_task_with_the_reason(worker: Worker, policy: str) -> None:
    outcome = worker.run(policy, {"result": {"decision": "deny", "reason": "too risky"}})
    assert outcome.outcome is AttemptStatus.FAILED
    assert outcome.error is not None
    assert (outcome.error.type, outcome.error.message) == ("PolicyDenied", "too risky")


def test_deny_without_a_reason_names_the_policy(worker: Worker, policy: str) -> None:
    outcome = worker.run(policy, {"result": {"decision": "deny"}})
    assert outcome.error is not None
    assert outcome.error.message == "policy 'tests.action' denied the step"


@pytest.mark.parametrize(
    "returned", [None, "allow", {"decision": "maybe"}, {"reason": "no decision"}, [1]]
)
def test_a_result_that_is_not_a_decision_fails_the_task(
    worker: Worker, policy: str, returned: Any
) -> None:
    outcome = worker.run(policy, {"result": returned})
    assert outcome.outcome is AttemptStatus.FAILED
    assert outcome.error is not None
    assert outcome.error.type == "InvalidPolicyDecision"
    assert outcome.error.message.startswith(f"policy 'tests.action' returned {returned!r}")


def test_an_action_that_is_not_a_policy_may_return_anything(
    python_action: PythonActionFactory, worker: Worker
) -> None:
    ref = python_action(POLICY, parameters={"result": {}}).ref
    outcome = worker.run(ref, {"result": {"decision": "deny"}})
    assert (outcome.outcome, outcome.result) == (AttemptStatus.SUCCEEDED, {"decision": "deny"})
