"""A run's graph and variable context, and step transitions, on runs that really ran.

``api.drawn`` has a parallel block, a with_items task, a child run and an inquiry: the
embedded runner (the ``runner`` fixture) carries a run of it to its question, the API
draws it, shows its context and completes or fails the waiting step, and the runner then
carries the run on as the services would.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from treadle.api.models.run_views import RunGraph, VariableContext
from treadle.common.access import AuditOutcome, Role
from treadle.common.loader import load_workflow_text
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.core.events import StepFailRequested, StepSkipRequested
from treadle.scheduler.service.starting import RunOptions
from treadle.scheduler.store import Store

ErrorShape = Callable[..., dict[str, Any]]
Bearer = Callable[[Role], dict[str, str]]

PREFIXES = ("/api/v1/runs", "/api/v1/workflow-executions")
TOKEN = "tok-5b1e0c9d7a3f"

DRAWN = """\
ref: api.drawn
parameters:
  token: {type: string, secret: true}
  names: {type: array, default: [a, b, c]}
vars:
  stage: started
tasks:
  - name: checks
    type: parallel
    tasks:
      - name: check_a
        action: core.echo
        input: {message: a}
      - name: check_b
        action: core.noop
    next:
      - when: "{{ succeeded() }}"
        publish:
          - stage: checked
          - auth: "Bearer {{ parameters.token }}"
        do: [each]
  - name: each
    action: core.echo
    with_items: "{{ parameters.names }}"
    input: {message: "{{ item }}"}
    next: [{do: [child]}]
  - name: child
    action: examples.hello_world
    input: {name: Ada}
    next:
      - when: "{{ succeeded() }}"
        do: [approve]
  - name: approve
    action: core.ask
    input:
      prompt: Go on?
      schema:
        type: object
        properties: {ok: {type: boolean}}
        required: [ok]
    next:
      - when: "{{ succeeded() }}"
        do: [done]
      - when: "{{ failed() }}"
        do: [cleanup]
  - name: done
    action: core.noop
  - name: cleanup
    action: core.noop
"""

AWAIT_REPLY = """\
ref: api.await_reply
tasks:
  - name: await_reply
    action: core.wait_for_event
    input: {type: mail.received}
"""


def start(runner: EmbeddedRunner, text: str, parameters: dict[str, Any] | None = None) -> str:
    """Start a run of the workflow ``text`` and carry it on until it waits."""
    spec = load_workflow_text(textwrap.dedent(text), "<test>")
    run_id = runner.start(spec, parameters or {}, RunOptions(identity={"login": "t"}))
    assert runner.follow(run_id).waiting
    return run_id


@pytest.fixture
def drawn(runner: EmbeddedRunner) -> str:
    return start(runner, DRAWN, {"token": TOKEN})


def audit(store: Store) -> list[Any]:
    with store.unit_of_work() as uow:
        return uow.list_audit(workspace=None, action="run.transition")


def transition(api: TestClient, bearer: Bearer, run_id: str, task: str, **body: Any) -> Any:
    url = f"/api/v1/runs/{run_id}/steps/{task}/transition"
    return api.post(url, headers=bearer(Role.OPERATOR), json=body)


@pytest.mark.parametrize("prefix", PREFIXES)
def test_the_graph_shows_every_task_edge_and_group_with_the_runs_progress(
    api: TestClient, bearer: Bearer, drawn: str, prefix: str
) -> None:
    response = api.get(f"{prefix}/{drawn}/graph", headers=bearer(Role.VIEWER))

    assert response.status_code == 200, response.json()
    graph = response.json()
    RunGraph.model_validate(graph)
    assert (graph["run"], graph["workflow"], graph["status"]) == (drawn, "api.drawn", "running")
    nodes = {node["name"]: node for node in graph["nodes"]}
    assert list(nodes) == [
        "checks",
        "check_a",
        "check_b",
        "each",
        "child",
        "approve",
        "done",
        "cleanup",
    ]
    kinds = {name: node["kind"] for name, node in nodes.items()}
    assert kinds["checks"] == "parallel"
    assert kinds["child"] == "workflow"
    assert kinds["approve"] == "inquiry"
    assert kinds["check_a"] == "action"
    assert nodes["check_a"]["parallel"] == "checks"
    assert nodes["checks"]["parallel"] is None
    assert [name for name, node in nodes.items() if node["start"]] == [
        "checks",
        "check_a",
        "check_b",
    ]
    assert nodes["each"]["with_items"] is True
    assert nodes["each"]["items"] == {"total": 3, "done": 3, "by_status": {"succeeded": 3}}
    assert nodes["approve"]["status"] == "waiting"
    assert nodes["approve"]["inquiry"] is not None
    assert (nodes["done"]["status"], nodes["done"]["executions"]) == (None, 0)
    [child] = nodes["child"]["child_runs"]
    assert child["href"] == f"/api/v1/runs/{child['id']}"
    linked = api.get(child["href"], headers=bearer(Role.VIEWER)).json()
    assert (linked["workflow"], linked["parent_run"]) == ("examples.hello_world", drawn)

    edges = {(edge["source"], edge["target"]): edge for edge in graph["edges"]}
    assert set(edges) == {
        ("checks", "each"),
        ("each", "child"),
        ("child", "approve"),
        ("approve", "done"),
        ("approve", "cleanup"),
    }
    assert edges["checks", "each"]["condition"] == "{{ succeeded() }}"
    assert edges["checks", "each"]["publishes"] == ["stage", "auth"]
    assert edges["each", "child"]["condition"] is None
    assert edges["approve", "cleanup"]["condition"] == "{{ failed() }}"
    assert edges["approve", "cleanup"]["transition"] == 1
    assert graph["parallel_groups"] == [
        {
            "name": "checks",
            "tasks": ["check_a", "check_b"],
            "entries": ["check_a", "check_b"],
            "status": "succeeded",
        }
    ]


@pytest.mark.parametrize("prefix", PREFIXES)
def test_the_context_shows_parameters_and_published_variables_secrets_masked(
    api: TestClient, bearer: Bearer, drawn: str, prefix: str
) -> None:
    response = api.get(f"{prefix}/{drawn}/context", headers=bearer(Role.VIEWER))

    assert response.status_code == 200, response.json()
    assert TOKEN not in response.text
    context = VariableContext.model_validate(response.json()).model_dump()
    assert context["parameters"] == {"token": "***", "names": ["a", "b", "c"]}
    assert context["secret_parameters"] == ["token"]
    assert context["vars"]["stage"] == "checked"
    assert context["vars"]["auth"].startswith("Bearer ")


def test_completing_a_waiting_human_task_answers_its_inquiry(
    api: TestClient, bearer: Bearer, drawn: str, runner: EmbeddedRunner, store: Store
) -> None:
    answer = {"ok": True}
    response = transition(api, bearer, drawn, "approve", transition="complete", payload=answer)

    assert response.status_code == 200, response.json()
    document = response.json()
    assert document["id"] == drawn
    [inquiry] = document["inquiries"]
    assert inquiry["status"] == "answered"
    with store.unit_of_work() as uow:
        answered = uow.get_inquiry(inquiry["id"])
    assert (answered.response, answered.responder) == ({"ok": True}, "token:operator-token")
    [entry] = audit(store)
    assert (entry.target, entry.outcome) == (drawn, AuditOutcome.OK)
    assert entry.details == {"task": "approve", "transition": "complete"}
    followed = runner.follow(drawn)
    assert followed.state.status.value == "succeeded"
    assert [e.task for e in followed.state.executions.values()][-1] == "done"


def test_a_payload_that_does_not_fit_is_422_and_changes_nothing(
    api: TestClient, bearer: Bearer, drawn: str, store: Store, error_shape: ErrorShape
) -> None:
    with store.unit_of_work() as uow:
        version = uow.run_version(drawn)

    response = transition(api, bearer, drawn, "approve", transition="complete", payload={"ok": 1})

    assert response.status_code == 422
    error_shape(response.json(), "invalid_parameters", "response['ok']")
    with store.unit_of_work() as uow:
        assert uow.run_version(drawn) == version
    assert [entry.outcome for entry in audit(store)] == [AuditOutcome.FAILED]


def test_failing_a_waiting_step_closes_its_inquiry_and_takes_its_failed_transition(
    api: TestClient, bearer: Bearer, drawn: str, runner: EmbeddedRunner, store: Store
) -> None:
    response = transition(api, bearer, drawn, "approve", transition="fail", reason="no budget")

    assert response.status_code == 200, response.json()
    document = response.json()
    approve = next(task for task in document["tasks"] if task["name"] == "approve")
    assert approve["status"] == "failed"
    assert approve["error"] == {"type": "FailedByOperator", "message": "no budget"}
    assert [inquiry["status"] for inquiry in document["inquiries"]] == ["canceled"]
    [entry] = audit(store)
    assert entry.details == {"task": "approve", "transition": "fail", "reason": "no budget"}
    with store.unit_of_work() as uow:
        [logged] = [e for e in uow.list_events(drawn) if e.event.kind == "step_fail_requested"]
    assert logged.event == StepFailRequested(task="approve", reason="no budget")
    followed = runner.follow(drawn)
    assert followed.state.status.value == "succeeded"  # `cleanup` handled the failure
    assert [e.task for e in followed.state.executions.values()][-1] == "cleanup"


def test_failing_an_event_wait_fails_the_run_when_nothing_handles_it(
    api: TestClient, bearer: Bearer, runner: EmbeddedRunner, store: Store
) -> None:
    run_id = start(runner, AWAIT_REPLY)
    response = transition(api, bearer, run_id, "await_reply", transition="fail", reason="gone")
    assert response.status_code == 200, response.json()
    assert response.json()["status"] == "failed"
    with store.unit_of_work() as uow:
        assert uow.list_event_waits(run_id=run_id) == []


def test_skipping_a_waiting_step_closes_its_inquiry_and_takes_neither_outcome(
    api: TestClient, bearer: Bearer, drawn: str, runner: EmbeddedRunner, store: Store
) -> None:
    response = transition(api, bearer, drawn, "approve", transition="skip", reason="by phone")

    assert response.status_code == 200, response.json()
    approve = next(task for task in response.json()["tasks"] if task["name"] == "approve")
    assert approve["status"] == "skipped"
    assert [inquiry["status"] for inquiry in response.json()["inquiries"]] == ["canceled"]
    [entry] = audit(store)
    assert entry.details == {"task": "approve", "transition": "skip", "reason": "by phone"}
    with store.unit_of_work() as uow:
        [logged] = [e for e in uow.list_events(drawn) if e.event.kind == "step_skip_requested"]
    assert logged.event == StepSkipRequested(task="approve", reason="by phone")
    followed = runner.follow(drawn)
    assert followed.state.status.value == "succeeded"
    tasks = [e.task for e in followed.state.executions.values()]
    assert "done" not in tasks  # neither succeeded() nor failed() holds for a skipped step
    assert "cleanup" not in tasks


def test_a_running_step_cannot_be_skipped(
    api: TestClient, bearer: Bearer, drawn: str, store: Store, error_shape: ErrorShape
) -> None:
    response = transition(api, bearer, drawn, "each", transition="skip", reason="later")
    assert response.status_code == 409
    error_shape(response.json(), "conflict", "skip is not supported for this step")
    assert [entry.outcome for entry in audit(store)] == [AuditOutcome.REFUSED]


@pytest.mark.parametrize(
    ("task", "body", "fragment"),
    [
        ("each", {"transition": "fail", "reason": "x"}, "fail is not supported for this step"),
        ("each", {"transition": "complete", "payload": {}}, "has no open inquiry"),
        ("done", {"transition": "fail", "reason": "x"}, "has not started"),
    ],
)
def test_a_step_that_does_not_wait_is_409_and_unchanged(
    api: TestClient,
    bearer: Bearer,
    drawn: str,
    store: Store,
    task: str,
    body: dict[str, Any],
    fragment: str,
    error_shape: ErrorShape,
) -> None:
    with store.unit_of_work() as uow:
        version = uow.run_version(drawn)
    response = transition(api, bearer, drawn, task, **body)
    assert response.status_code == 409
    error_shape(response.json(), "conflict", fragment)
    with store.unit_of_work() as uow:
        assert uow.run_version(drawn) == version


def test_an_ended_run_has_no_steps_to_transition(
    api: TestClient, bearer: Bearer, drawn: str, error_shape: ErrorShape
) -> None:
    api.post(f"/api/v1/runs/{drawn}/cancel", headers=bearer(Role.OPERATOR))
    response = transition(api, bearer, drawn, "approve", transition="complete", payload={"ok": 1})
    assert response.status_code == 409
    error_shape(response.json(), "conflict", "canceled")


def test_unknown_runs_and_tasks_are_404(
    api: TestClient, bearer: Bearer, drawn: str, error_shape: ErrorShape
) -> None:
    viewer = bearer(Role.VIEWER)
    for path in ("graph", "context"):
        response = api.get(f"/api/v1/runs/r-nope/{path}", headers=viewer)
        assert response.status_code == 404
        error_shape(response.json(), "not_found", "r-nope")
    unknown_run = transition(api, bearer, "r-nope", "approve", transition="fail", reason="x")
    assert unknown_run.status_code == 404
    unknown_task = transition(api, bearer, drawn, "nope", transition="fail", reason="x")
    assert unknown_task.status_code == 404
    error_shape(unknown_task.json(), "not_found", "no task 'nope'")


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"transition": "fail"}, "body field 'reason'"),
        ({"transition": "skip"}, "body field 'reason'"),
        ({"transition": "finish"}, "body field 'transition'"),
        ({"payload": {}}, "body field 'transition'"),
        ({"transition": "fail", "reason": ""}, "body field 'reason'"),
        ({"transition": "complete", "extra": 1}, "body field 'extra'"),
    ],
)
def test_a_bad_transition_is_422_naming_the_field(
    api: TestClient,
    bearer: Bearer,
    drawn: str,
    body: dict[str, Any],
    where: str,
    error_shape: ErrorShape,
) -> None:
    response = transition(api, bearer, drawn, "approve", **body)
    assert response.status_code == 422
    error_shape(response.json(), "validation_error", where)


def test_only_operators_transition_steps(
    api: TestClient, bearer: Bearer, drawn: str, store: Store, error_shape: ErrorShape
) -> None:
    url = f"/api/v1/workflow-executions/{drawn}/steps/approve/transition"
    body = {"transition": "fail", "reason": "no"}
    refused = api.post(url, headers=bearer(Role.VIEWER), json=body)
    assert refused.status_code == 403
    error_shape(refused.json(), "forbidden", "operator")
    assert api.post(url, json=body).status_code == 401
    assert api.get(f"/api/v1/runs/{drawn}/graph").status_code == 401
    assert audit(store) == []
    allowed = api.post(url, headers=bearer(Role.ADMIN), json=body)
    assert allowed.status_code == 200
