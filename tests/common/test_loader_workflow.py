"""Attune workflow files to WorkflowSpec: fields and parameters (errors: the _errors module)."""

from __future__ import annotations

from datetime import timedelta

from treadle.common.spec import Backoff, InquirySpec, TaskType

from .workflow_text import load, one_problem, problems


def test_top_level_fields() -> None:
    spec = load(
        """\
        ref: demo.full
        name: ignored_attune_name
        label: Full
        description: Everything at the top level
        version: 1.10
        enabled: true
        tags: [a]
        metadata: {anything: goes}
        timeout: 2h
        output:
          type: object
          properties: {x: {type: string}}
        vars:
          count: 1
          names: []
        trigger:
          type: event
          event_type: order.created
          filter: "{{ event.total > 10 }}"
        tasks:
          - name: only
            action: core.noop
        output_map:
          x: "{{ workflow.count }}"
        """
    )
    assert spec.ref == "demo.full"
    assert spec.pack == "demo"
    assert spec.label == "Full"
    assert spec.version == "1.10"  # numbers keep the text as written
    assert spec.timeout == timedelta(hours=2)
    assert spec.output_schema == {"type": "object", "properties": {"x": {"type": "string"}}}
    assert [(v.name, v.value) for v in spec.vars] == [("count", 1), ("names", [])]
    assert spec.trigger is not None
    assert spec.trigger.event_type == "order.created"
    assert spec.output_map == {"x": "{{ workflow.count }}"}
    assert spec.source.loc(("tasks", 0)).line == 21


def test_vars_as_a_list_keep_their_order() -> None:
    spec = load(
        """\
        ref: demo.vars
        vars:
          - b: 2
          - a: 1
        tasks: [{name: t, action: core.noop}]
        """
    )
    assert [(v.name, v.value) for v in spec.vars] == [("b", 2), ("a", 1)]
    assert spec.source.loc(("vars", 1)).line == 4


def test_output_schema_is_used_when_output_is_absent() -> None:
    spec = load(
        """\
        ref: demo.out
        output_schema:
          total: {type: integer}
          items: {type: array, required: true}
        tasks: [{name: t, action: core.noop}]
        """
    )
    assert spec.output_schema == {
        "type": "object",
        "properties": {"total": {"type": "integer"}, "items": {"type": "array"}},
        "required": ["items"],
    }


def test_ref_is_required_unless_a_default_is_given() -> None:
    text = "tasks: [{name: t, action: core.noop}]\n"
    assert (
        one_problem(text) == "1:1: the workflow needs a 'ref' (for example 'my_pack.my_workflow')"
    )
    assert load(text, default_ref="pack.default").ref == "pack.default"


def test_task_fields() -> None:
    spec = load(
        """\
        ref: demo.tasks
        tasks:
          - name: fan
            action: core.echo
            description: ignored
            permission_set_refs: [x]
            input: {message: "{{ item }}"}
            with_items: "{{ parameters.names }}"
            batch_size: 5
            concurrency: 2
            retry: {count: 3, delay: 500ms, backoff: exponential, max_delay: 1m}
            timeout: 30
            delay: 1.5
            join: all
            when: parameters.enabled
            queue: heavy
            compensate: {action: core.echo, input: {message: undo}}
          - name: ask
            action: core.ask
            join: 2
            wait_for:
              inquiry:
                prompt: Continue?
                response_schema: {type: object}
                assigned_to: ops
                timeout: 1h
              timeout: 2h
          - name: literal
            action: core.noop
            with_items: [1, 2, 3]
        """
    )
    fan, ask, literal = spec.tasks
    assert fan.path == ("tasks", 0)
    assert fan.input == {"message": "{{ item }}"}
    assert fan.with_items == "{{ parameters.names }}"
    assert (fan.batch_size, fan.concurrency) == (5, 2)
    assert fan.retry is not None
    assert fan.retry.count == 3
    assert fan.retry.delay == timedelta(milliseconds=500)
    assert fan.retry.backoff is Backoff.EXPONENTIAL
    assert fan.retry.max_delay == timedelta(minutes=1)
    assert fan.timeout == timedelta(seconds=30)
    assert fan.delay == timedelta(seconds=1.5)
    assert fan.join == "all"
    assert fan.when == "{{ parameters.enabled }}"  # a bare expression becomes a template
    assert fan.queue == "heavy"
    assert fan.compensate is not None
    assert fan.compensate.input == {"message": "undo"}
    assert ask.join == 2
    assert ask.wait_for is not None
    assert ask.wait_for.timeout == timedelta(hours=2)
    assert isinstance(ask.wait_for.inquiry, InquirySpec)
    assert ask.wait_for.inquiry.schema_ == {"type": "object"}
    assert ask.wait_for.inquiry.timeout == timedelta(hours=1)
    assert literal.with_items == [1, 2, 3]


def test_parallel_tasks_nest_with_their_paths() -> None:
    spec = load(
        """\
        ref: demo.par
        tasks:
          - name: both
            type: parallel
            tasks:
              - name: left
                action: core.noop
              - name: right
                action: core.noop
        """
    )
    [both] = spec.tasks
    assert both.type is TaskType.PARALLEL
    assert [t.name for t in both.tasks] == ["left", "right"]
    assert both.tasks[1].path == ("tasks", 0, "tasks", 1)
    assert spec.source.loc(both.tasks[1].path).line == 8


def test_wait_for_inquiry_id_template_and_event() -> None:
    spec = load(
        """\
        ref: demo.wait
        tasks:
          - name: gate
            action: core.noop
            wait_for:
              inquiry: "{{ task.x.result.id }}"
              event: {type: order.paid, subject: "{{ parameters.id }}"}
        """
    )
    wait = spec.tasks[0].wait_for
    assert wait is not None
    assert wait.inquiry == "{{ task.x.result.id }}"
    assert wait.event is not None
    assert wait.event.type == "order.paid"


def test_literal_values_are_kept_as_written() -> None:
    spec = load(
        """\
        ref: demo.lit
        tasks:
          - name: t
            action: core.echo
            input:
              message: "{{ parameters.x }} and {{ parameters.y }}"
              nested: {list: [1, "{{ item }}"], n: null}
        """
    )
    assert spec.tasks[0].input == {
        "message": "{{ parameters.x }} and {{ parameters.y }}",
        "nested": {"list": [1, "{{ item }}"], "n": None},
    }


# -- parameters ------------------------------------------------------------------------------


def test_flat_parameters() -> None:
    spec = load(
        """\
        ref: demo.params
        parameters:
          name: {type: string, required: true, description: Who}
          token: {type: string, secret: true}
          count: {type: integer, default: 3, minimum: 1, maximum: 9}
          tags: {type: array, items: {type: string}, minItems: 1}
          mode: {enum: [a, b]}
        tasks: [{name: t, action: core.noop}]
        """
    )
    by_name = {p.name: p for p in spec.parameters}
    assert list(by_name) == ["name", "token", "count", "tags", "mode"]
    assert by_name["name"].required
    assert by_name["name"].description == "Who"
    assert by_name["name"].schema_ == {"type": "string"}
    assert by_name["token"].secret
    count = by_name["count"]
    assert (count.has_default, count.default) == (True, 3)
    assert count.schema_ == {"type": "integer", "minimum": 1, "maximum": 9}
    assert by_name["tags"].schema_ == {"type": "array", "items": {"type": "string"}, "minItems": 1}
    assert not by_name["mode"].has_default


def test_full_json_schema_parameters() -> None:
    spec = load(
        """\
        ref: demo.schema
        parameters:
          type: object
          properties:
            name: {type: string, description: Who}
            count: {type: integer, default: 2}
          required: [name]
        tasks: [{name: t, action: core.noop}]
        """
    )
    name, count = spec.parameters
    assert (name.name, name.required, name.schema_, name.description) == (
        "name",
        True,
        {"type": "string"},
        "Who",
    )
    assert (count.required, count.has_default, count.default) == (False, True, 2)


def test_bad_parameter_schemas_are_reported_at_their_line() -> None:
    found = problems(
        """\
        ref: demo.bad
        parameters:
          name: {type: strnig}
          count: {type: integer, default: "three"}
          limit: {type: integer, minimum: low}
          flag: {type: boolean, required: maybe}
        tasks: [{name: t, action: core.noop}]
        """
    )
    assert found[0] == "3:16: parameter 'name': unknown type 'strnig' (did you mean 'string'?)"
    assert found[1].startswith("4:3: parameter 'count': default 'three' is invalid")
    assert found[2].startswith("5:3: parameter 'limit': invalid schema")
    assert found[3] == "6:35: 'required' of parameter 'flag' must be true or false, not 'maybe'"
    assert len(found) == 4
