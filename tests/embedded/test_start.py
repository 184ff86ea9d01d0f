"""Starting runs: parameters and their defaults, secrets, idempotency, and the namespaces a
run reads from outside its own tasks (the keystore and the pack configuration)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from treadle.common.errors import ParameterError
from treadle.common.secret_refs import MARKER
from treadle.common.source import Severity
from treadle.common.spec import PackSpec
from treadle.common.validate import checked_workflow
from treadle.scheduler.service import definitions, starting
from treadle.scheduler.service.starting import RunOptions

SECRET = "s3cr3t-token-value"

PARAMETERS = """\
ref: tests.parameters
parameters:
  name: {type: string, default: world}
  count: {type: integer, default: 3, minimum: 1}
  token: {type: string, secret: true, required: true}
  tags: {type: array, items: {type: string}}
tasks:
  - name: call
    action: core.echo
    input: {message: "{{ parameters.name }} x{{ parameters.count }} with {{ parameters.token }}"}
output_map:
  said: "{{ task.call.result.message }}"
  token: "{{ parameters.token }}"
  tags: "{{ parameters.tags }}"
"""


def test_defaults_apply_and_secrets_are_masked_in_the_run_document(harness: Any) -> None:
    spec = harness.workflow(PARAMETERS)
    runner = harness.runner()
    run_id, followed = harness.run(runner, spec, {"token": SECRET})
    assert followed.state.status == "succeeded"
    # the run holds a reference, the action got the real value (its worker blanks it out
    # of the result) ...
    token = followed.state.context.parameters["token"]
    assert token.startswith(MARKER)
    assert followed.state.output["said"] == "world x3 with ***"
    assert followed.state.output["token"] == token
    # ... and the document never shows either
    document = harness.document(runner, run_id)
    assert document["parameters"] == {"name": "world", "count": 3, "token": "***", "tags": None}
    assert document["output"] == {"said": "world x3 with ***", "token": "***", "tags": None}
    assert harness.task(document, "call")["result"] == {"message": "world x3 with ***"}
    assert SECRET not in repr(document)


def test_a_parameter_error_creates_no_run(harness: Any) -> None:
    spec = harness.workflow(PARAMETERS)
    runner = harness.runner()
    with pytest.raises(ParameterError) as refused:
        runner.start(spec, {"count": 0, "colour": "red", "tags": ["a", 1]})
    assert refused.value.problems == (
        "unknown parameter 'colour' (known: count, name, tags, token)",
        "missing required parameter 'token'",
        "parameter 'count': 0 is less than the minimum of 1",
        "parameter 'tags[1]': 1 is not of type 'string'",
    )
    with runner.store.unit_of_work() as uow:
        assert uow.list_runs() == []
        assert uow.list_definition_versions(spec.ref) == []


def test_a_bad_secret_value_is_not_quoted_in_the_error(harness: Any) -> None:
    spec = harness.workflow(PARAMETERS.replace("secret: true,", "secret: true, minLength: 40,"))
    runner = harness.runner()
    with pytest.raises(ParameterError) as refused:
        runner.start(spec, {"token": SECRET})
    assert refused.value.problems == (
        "parameter 'token': invalid value, not shown because the parameter is secret "
        "(breaks: minLength)",
    )
    assert SECRET not in str(refused.value)


def test_the_same_idempotency_key_gives_the_same_run(harness: Any) -> None:
    spec = harness.catalog.workflow("examples.hello_world")
    runner = harness.runner()
    first = runner.starter.start(spec, {"name": "once"}, RunOptions(idempotency_key="deploy-42"))
    again = runner.starter.start(spec, {"name": "twice"}, RunOptions(idempotency_key="deploy-42"))
    other = runner.starter.start(spec, {}, RunOptions(idempotency_key="deploy-43"))
    assert again == first
    assert other != first
    with runner.store.unit_of_work() as uow:
        assert sorted(r.id for r in uow.list_runs()) == sorted([first, other])
    assert runner.follow(first).state.status == "succeeded"
    assert harness.document(runner, first)["output"] == {"greeting": "Hello, once!"}


def test_templates_read_the_keystore(harness: Any) -> None:
    spec = harness.workflow(
        """\
        ref: tests.keystore
        tasks:
          - name: read
            action: core.echo
            input: {message: "{{ keystore.region }} / {{ kv.limits.max }}"}
        output_map:
          said: "{{ task.read.result.message }}"
          limits: "{{ keystore.limits }}"
        """
    )
    runner = harness.runner()
    with runner.store.unit_of_work() as uow:
        now = datetime.now(UTC)
        uow.kv_set("region", "eu-west-1", secret=False, at=now)
        uow.kv_set("limits", {"max": 7}, secret=False, at=now)
    run_id, followed = harness.run(runner, spec)
    assert followed.state.status == "succeeded"
    assert harness.document(runner, run_id)["output"] == {
        "said": "eu-west-1 / 7",
        "limits": {"max": 7},
    }


def test_templates_read_the_pack_configuration(harness: Any) -> None:
    harness.catalog.packs["configured"] = PackSpec(
        ref="configured", config={"endpoint": "https://api.example.test", "retries": {"max": 4}}
    )
    spec = harness.workflow(
        """\
        ref: configured.reader
        tasks:
          - name: read
            action: core.echo
            input: {message: "{{ config.endpoint }} ({{ pack.config.retries.max }} tries)"}
        output_map:
          said: "{{ task.read.result.message }}"
          retries: "{{ pack.config.retries }}"
        """
    )
    runner = harness.runner()
    run_id, followed = harness.run(runner, spec)
    assert followed.state.status == "succeeded"
    assert harness.document(runner, run_id)["output"] == {
        "said": "https://api.example.test (4 tries)",
        "retries": {"max": 4},
    }


def test_a_start_checks_parameters_once_and_publishes_the_graph_validation_built(
    harness: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = harness.catalog.workflow("examples.hello_world")
    issues, graph = checked_workflow(spec, harness.catalog)
    assert graph is not None
    assert not [i for i in issues if i.severity is Severity.ERROR]
    runner = harness.runner()
    checks: list[str] = []
    resolve = starting.resolve_parameters

    def counted(*args: Any, **kwargs: Any) -> Any:
        checks.append(kwargs.get("subject", ""))
        return resolve(*args, **kwargs)

    def compile_again(*_args: Any) -> Any:
        raise AssertionError("the spec was compiled again")

    monkeypatch.setattr(starting, "resolve_parameters", counted)
    monkeypatch.setattr(definitions, "_compile", compile_again)
    run_id = runner.start(spec, {"name": "once"}, graph=graph)
    assert checks == ["parameters of 'examples.hello_world'"]
    assert runner.follow(run_id).state.status.value == "succeeded"
