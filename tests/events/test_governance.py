"""Governance checks in embedded mode: allow continues, require_approval puts a person in
front of the rest (approve continues, reject fails the run), deny fails the step and the
run follows its failure transitions. Policies are pluggable: a pack ships its own."""

from __future__ import annotations

from typing import Any

import pytest

from treadle.scheduler.service.inquiries import answer_inquiry

Embedded = Any  # the ``embedded`` fixture (tests/events/conftest.py)


@pytest.mark.parametrize("level", ["RISK_LEVEL_LOW", "medium"])
def test_allow_lets_the_flow_continue(embedded: Embedded, level: str) -> None:
    followed = embedded.start("eventtest.governed", {"risk_level": level})

    document = embedded.document(followed.state.run_id)
    assert document["status"] == "succeeded"
    assert embedded.task(document, "check")["result"]["decision"] == "allow"
    assert document["output"] == {"deployed": "deployed", "denied": None}
    assert document["inquiries"] == []


def test_require_approval_waits_for_a_person_and_approval_continues(embedded: Embedded) -> None:
    followed = embedded.start("eventtest.governed", {"risk_level": "RISK_LEVEL_HIGH"})
    run_id = followed.state.run_id

    assert followed.waiting
    [inquiry] = embedded.pending(run_id)
    assert inquiry["task"] == "approve"
    assert inquiry["assigned_to"] == "risk-team"
    assert inquiry["prompt"] == "deploy: high risk needs approval"
    assert [t["name"] for t in embedded.document(run_id)["tasks"]] == ["check", "approve"]

    embedded.respond(run_id, {"approved": True})

    document = embedded.document(run_id)
    assert document["status"] == "succeeded"
    assert document["output"]["deployed"] == "deployed"


def test_a_rejected_approval_fails_the_run_without_deploying(embedded: Embedded) -> None:
    run_id = embedded.start("eventtest.governed", {"risk_level": "high"}).state.run_id

    embedded.respond(run_id, {"approved": False})

    document = embedded.document(run_id)
    assert document["status"] == "failed"
    assert "deploy" not in [t["name"] for t in document["tasks"]]
    rejected = embedded.task(document, "rejected")
    assert rejected["error"]["message"] == "the approver rejected the deploy"


def test_deny_fails_the_check_and_the_run_follows_its_failure_transition(
    embedded: Embedded,
) -> None:
    followed = embedded.start("eventtest.governed", {"risk_level": "RISK_LEVEL_CRITICAL"})

    document = embedded.document(followed.state.run_id)
    check = embedded.task(document, "check")
    assert check["status"] == "failed"
    assert check["error"]["type"] == "PolicyDenied"
    assert "deploy" not in [t["name"] for t in document["tasks"]]
    assert document["status"] == "succeeded"  # the failure was handled by 'denied'
    assert document["output"]["denied"] == (
        "denied: PolicyDenied: deploy: critical risk is not allowed"
    )


def test_an_unknown_risk_level_is_refused_as_invalid_input(embedded: Embedded) -> None:
    followed = embedded.start("eventtest.governed", {"risk_level": "RISK_LEVEL_UNSPECIFIED"})

    check = embedded.task(embedded.document(followed.state.run_id), "check")
    assert (check["status"], check["error"]["type"]) == ("failed", "InvalidInput")


def test_a_packs_own_policy_decides(embedded: Embedded) -> None:
    small = embedded.start("eventtest.pack_policy", {"amount": 10}).state.run_id
    large = embedded.start("eventtest.pack_policy", {"amount": 500})
    huge = embedded.start("eventtest.pack_policy", {"amount": 5000}).state.run_id

    assert embedded.document(small)["output"] == {"paid": "paid 10"}
    assert large.waiting
    [inquiry] = embedded.pending(large.state.run_id)
    assert inquiry["prompt"] == "500 needs a second pair of eyes"
    answer_inquiry(embedded.runner.runs, inquiry["id"], {"approved": True}, "cfo")
    embedded.runner.follow(large.state.run_id)
    assert embedded.document(large.state.run_id)["output"] == {"paid": "paid 500"}
    denied = embedded.document(huge)
    assert denied["status"] == "failed"
    error = embedded.task(denied, "check")["error"]
    assert (error["type"], error["message"]) == ("PolicyDenied", "5000 is over the limit of 1000")
