"""No answer of the inquiries, events, keystore and run-view routes contains a secret value.

A secret keystore entry is set over HTTP and a run is started with a secret parameter; the
run copies both into its prompts and variables. The test then drives the run through every
route (reading, answering, transitioning, drawing) and looks for either value in the text
of every response body: the values must never come back, whatever route shows the run.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from httpx import Response

from treadle.common.access import Role
from treadle.common.loader import load_workflow_text
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.service.starting import RunOptions

PASSWORD = "pw-7f3a9c2e51d4"
API_KEY = "sk-live-91c0e4b7d2a8"

LEAKY = """\
ref: api.leaky
parameters:
  password: {type: string, secret: true}
vars:
  key_copy: "{{ keystore.api_key }}"
tasks:
  - name: ask
    action: core.ask
    input:
      prompt: "Log in with {{ parameters.password }} and {{ keystore.api_key }}?"
      schema: {type: object}
    next:
      - when: "{{ succeeded() }}"
        publish:
          - echoed: "{{ parameters.password }}"
        do: [again]
  - name: again
    action: core.ask
    input:
      prompt: "Again with {{ parameters.password }}?"
"""


def test_no_route_answers_a_secret_value(
    api: TestClient, bearer: Callable[[Role], dict[str, str]], runner: EmbeddedRunner
) -> None:
    admin = bearer(Role.ADMIN)
    bodies: list[Response] = []

    def call(method: str, url: str, **options: Any) -> Response:
        response = api.request(method, url, headers=admin, **options)
        assert response.status_code < 500, response.text
        bodies.append(response)
        return response

    call("PUT", "/api/v1/kv/api_key", json={"value": API_KEY, "secret": True})
    call("PUT", "/api/v1/kv/region", json={"value": "eu-1"})
    call("GET", "/api/v1/kv")
    call("GET", "/api/v1/kv/api_key")

    spec = load_workflow_text(textwrap.dedent(LEAKY), "<leaky>")
    run_id = runner.start(spec, {"password": PASSWORD}, RunOptions(identity={"login": "t"}))
    assert runner.follow(run_id).waiting

    def views() -> None:
        for prefix in ("/api/v1/runs", "/api/v1/workflow-executions"):
            call("GET", f"{prefix}/{run_id}/graph")
            call("GET", f"{prefix}/{run_id}/context")
        call("GET", f"/api/v1/runs/{run_id}")
        for inquiry in call("GET", "/api/v1/inquiries", params={"run": run_id}).json()["items"]:
            call("GET", f"/api/v1/inquiries/{inquiry['id']}")

    views()
    [first] = call("GET", "/api/v1/inquiries", params={"status": "pending"}).json()["items"]
    call("POST", f"/api/v1/inquiries/{first['id']}/respond", json=[])  # refused: not an object
    call("POST", f"/api/v1/inquiries/{first['id']}/respond", json={"fine": True})
    call("POST", f"/api/v1/inquiries/{first['id']}/respond", json={"again": True})  # 409
    assert runner.follow(run_id).waiting
    views()
    step = f"/api/v1/runs/{run_id}/steps/again/transition"
    call("POST", step, json={"transition": "skip", "reason": "no"})  # 409
    call("POST", step, json={"transition": "complete", "payload": {"done": True}})
    runner.follow(run_id)
    views()
    call("POST", step, json={"transition": "fail", "reason": "too late"})  # 409: it ended
    call("POST", "/api/v1/events", json={"type": "login.done", "data": {"run": run_id}})
    call("DELETE", "/api/v1/kv/api_key")

    statuses = {response.status_code for response in bodies}
    assert {200, 204, 409, 422} <= statuses
    for response in bodies:
        assert PASSWORD not in response.text, (response.request.url, response.text)
        assert API_KEY not in response.text, (response.request.url, response.text)
