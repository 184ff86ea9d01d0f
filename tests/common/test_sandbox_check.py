"""The plan sandbox's checks as tables: what each pattern class finds, and what it leaves.

Each row is a value a user could send and whether the default policy refuses it, where
(the runner whose input it is in), and for which reason. The false-positive rows matter as
much as the others: a URL with ``&`` in its query, a JSONPath, an email with ``;``.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from treadle.common.errors import ConfigurationError, ParameterError
from treadle.common.graph import Graph, compile_graph
from treadle.common.loader import load_workflow_text
from treadle.common.sandbox_check import check_definition, check_dispatch, check_parameters
from treadle.common.sandbox_policy import (
    AOS_POLICY,
    PatternRule,
    SandboxPolicy,
    SideEffectRule,
    policies_from_setting,
    policy_from,
)
from treadle.common.sandbox_report import Reason, SandboxRefusal, SandboxReport
from treadle.common.spec import ActionSpec, ParameterSpec, RunnerType

RUNNERS = {
    "core.shell": RunnerType.SHELL,
    "core.http": RunnerType.HTTP,
    "core.echo": RunnerType.PYTHON,
    "db.query": RunnerType.PYTHON,
}
DEFAULT = SandboxPolicy()


def graph_of(text: str, side_effects: frozenset[str] = frozenset()) -> Graph:
    spec = load_workflow_text(textwrap.dedent(text), "wf.yaml")
    return compile_graph(spec, RUNNERS.get, effects_of=lambda ref: ref in side_effects)


def one_task(action: str, value: str) -> Graph:
    return graph_of(
        f"""\
        ref: t.one
        tasks:
          - name: step
            action: {action}
            input:
              value: {json.dumps(value)}
        """
    )


def reasons(report: SandboxReport) -> set[Reason]:
    return {finding.reason for finding in report.violations}


# -- injection in literal inputs, by runner --------------------------------------------------

LITERALS = [
    # (action, value, reasons refused for)
    ("core.shell", "ls; rm -rf /", {Reason.COMMAND_INJECTION}),
    ("core.shell", "cat notes.txt | wc -l", {Reason.COMMAND_INJECTION}),
    ("core.shell", "echo `id`", {Reason.COMMAND_INJECTION}),
    ("core.shell", "echo $(whoami)", {Reason.COMMAND_INJECTION}),
    ("core.shell", "make && make install", {Reason.COMMAND_INJECTION}),
    ("core.shell", "echo hello", set()),
    ("core.echo", "hello; rm -rf /tmp/x", {Reason.COMMAND_INJECTION}),
    ("core.echo", "a report | bash", {Reason.COMMAND_INJECTION}),
    ("core.echo", "Dear Ada; thanks for the report | regards", set()),  # free text
    ("core.http", "https://api.example.com/items?a=1&b=2", set()),  # a query string
    ("db.query", "x' OR '1'='1", {Reason.SQL_INJECTION}),
    ("db.query", 'x" OR "1"="1', {Reason.SQL_INJECTION}),
    ("db.query", "1 OR 1=1", {Reason.SQL_INJECTION}),
    ("db.query", "ada'; DROP TABLE users; --", {Reason.SQL_INJECTION}),
    ("db.query", "1 UNION SELECT password FROM users", {Reason.SQL_INJECTION}),
    ("db.query", "admin'--", {Reason.SQL_INJECTION}),
    ("db.query", "the union of select committees", set()),
    ("core.echo", "../../../etc/passwd", {Reason.PATH_TRAVERSAL}),
    ("core.echo", "..\\..\\windows", {Reason.PATH_TRAVERSAL}),
    ("core.http", "https://x.example/%2e%2e/%2e%2e/secret", {Reason.PATH_TRAVERSAL}),
    ("core.echo", "/etc/shadow", {Reason.PATH_TRAVERSAL}),
    ("core.echo", "file:///proc/self/environ", {Reason.PATH_TRAVERSAL}),
    ("core.http", "https://example.com/etc/about", set()),  # /etc inside a URL path
    ("core.echo", "$.email", set()),  # a JSONPath
    ("core.echo", "v1.2..3", set()),
]


@pytest.mark.parametrize(("action", "value", "expected"), LITERALS)
def test_literal_inputs(action: str, value: str, expected: set[Reason]) -> None:
    report = check_definition(one_task(action, value), DEFAULT)
    assert reasons(report) == expected
    assert report.valid is (not expected)


def test_a_finding_names_the_task_field_class_and_line_never_the_value() -> None:
    report = check_definition(one_task("core.shell", "ls; cat /etc/secret-value"), DEFAULT)
    command = next(f for f in report.violations if f.reason is Reason.COMMAND_INJECTION)
    assert (command.task, command.field, command.action) == ("step", "input.value", "core.shell")
    assert command.pattern_class is not None
    assert command.pattern_class.value == "command"
    assert command.location == "wf.yaml:6:7"
    assert "secret-value" not in json.dumps(report.as_dict())
    assert command.message == (
        "task 'step': literal input 'value' looks like command injection "
        "(';' in a shell action's input)"
    )


def test_template_syntax_in_a_definition_is_the_language_not_an_injection() -> None:
    report = check_definition(one_task("core.echo", "Hello {{ parameters.name }}"), DEFAULT)
    assert report.valid


def test_literal_inputs_can_be_left_to_the_author() -> None:
    trusting = SandboxPolicy(literal_inputs=False)
    assert check_definition(one_task("core.shell", "ls | wc -l"), trusting).valid


# -- what the templates brought in, at dispatch ------------------------------------------------

PIPE = """\
ref: t.pipe
tasks:
  - name: count
    action: core.shell
    input:
      cmd: "grep {{ parameters.word }} notes.txt | wc -l"
      options: "{{ parameters.options }}"
"""


@pytest.mark.parametrize(
    ("rendered", "expected"),
    [
        ({"cmd": "grep ada notes.txt | wc -l"}, set()),  # the template's own pipe
        ({"cmd": "grep ada; rm -rf / notes.txt | wc -l"}, {Reason.COMMAND_INJECTION}),
        ({"cmd": "grep a | b notes.txt | wc -l"}, {Reason.COMMAND_INJECTION}),  # one more '|'
        ({"cmd": "grep {{ 7*7 }} notes.txt | wc -l"}, {Reason.TEMPLATE_INJECTION}),
        ({"cmd": "grep ../../x notes.txt | wc -l"}, {Reason.PATH_TRAVERSAL}),
        ({"options": {"extra": ["-i", "x' OR '1'='1"]}}, {Reason.SQL_INJECTION}),  # a structure
    ],
)
def test_rendered_inputs(rendered: dict[str, object], expected: set[Reason]) -> None:
    node = graph_of(PIPE).node("count")
    report = check_dispatch(node, rendered, DEFAULT)
    assert reasons(report) == expected


def test_a_rendered_violation_names_the_path_inside_a_structure() -> None:
    node = graph_of(PIPE).node("count")
    report = check_dispatch(node, {"options": {"extra": ["-i", "../../etc"]}}, DEFAULT)
    assert [f.field for f in report.violations] == ["input.options.extra[1]"]
    assert report.violations[0].message.startswith(
        "task 'count': rendered input 'options.extra[1]' looks like path traversal"
    )


# -- parameters ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("{{ config.password }}", {Reason.TEMPLATE_INJECTION}),
        ("{% for x in y %}", {Reason.TEMPLATE_INJECTION}),
        ("${jndi:ldap://x}", {Reason.TEMPLATE_INJECTION}),
        ("x'; DROP TABLE runs; --", {Reason.SQL_INJECTION}),
        ("../../secrets", {Reason.PATH_TRAVERSAL}),
        ("go; rm -rf /", {Reason.COMMAND_INJECTION}),
        ("Hello; world | again", set()),  # shell-only patterns do not apply to parameters
        ("https://example.com/?q=a&b=c", set()),
    ],
)
def test_parameters(value: str, expected: set[Reason]) -> None:
    report = check_parameters({"given": {"nested": [value]}}, DEFAULT)
    assert reasons(report) == expected
    if expected:
        assert report.violations[0].field == "parameters.given.nested[0]"


# -- forbidden actions and side effects ----------------------------------------------------------


@pytest.mark.parametrize(
    ("action", "forbidden"),
    [
        ("aos.shell_exec", True),  # an AOS skill, by its bare name in any pack
        ("mine.eval_code", True),
        ("core.echo", False),
        ("core.shell", False),  # not on the default list
    ],
)
def test_forbidden_actions(action: str, forbidden: bool) -> None:
    report = check_definition(one_task(action, "x"), DEFAULT)
    assert (Reason.FORBIDDEN_ACTION in reasons(report)) is forbidden


def test_a_forbidden_list_takes_refs_too() -> None:
    policy = SandboxPolicy(forbidden_actions=("core.shell",))
    assert reasons(check_definition(one_task("core.shell", "x"), policy)) == {
        Reason.FORBIDDEN_ACTION
    }
    assert check_definition(one_task("other.shell", "x"), policy).valid


POST = """\
ref: t.post
tasks:
  - name: create
    action: core.http
    input: {url: "https://api.example.com/tickets", method: post}
  - name: read
    action: core.http
    input: {url: "https://api.example.com/tickets"}
  - name: store
    action: aos.db_write
"""


def test_writes_without_side_effects_are_warnings_by_default_and_violations_for_aos() -> None:
    graph = graph_of(POST)
    default = check_definition(graph, DEFAULT)
    assert default.valid
    assert [(f.task, f.field) for f in default.warnings] == [
        ("create", "input.method"),
        ("store", "action"),
    ]
    aos = check_definition(graph, AOS_POLICY)
    assert reasons(aos) == {Reason.UNDECLARED_SIDE_EFFECTS}
    assert "sends POST requests but does not declare 'side_effects: true'" in (
        aos.violations[0].message
    )
    ignoring = SandboxPolicy(undeclared_side_effects=SideEffectRule.IGNORE)
    assert check_definition(graph, ignoring) == SandboxReport.of(())


def test_declared_side_effects_pass() -> None:
    graph = graph_of(POST, side_effects=frozenset({"core.http", "aos.db_write"}))
    assert check_definition(graph, AOS_POLICY) == SandboxReport.of(())


def test_a_method_from_the_actions_own_default_counts_when_the_action_is_known() -> None:
    graph = graph_of(
        """\
        ref: t.hook
        tasks:
          - name: notify
            action: core.http
            input: {url: "https://hooks.example.com"}
        """
    )
    posting = ActionSpec(
        ref="core.http",
        runner_type=RunnerType.HTTP,
        parameters=(ParameterSpec(name="method", has_default=True, default="PUT"),),
    )
    report = check_definition(graph, AOS_POLICY, action_of={"core.http": posting}.get)
    assert reasons(report) == {Reason.UNDECLARED_SIDE_EFFECTS}


def test_a_rendered_method_is_checked_at_dispatch() -> None:
    node = graph_of(
        """\
        ref: t.method
        tasks:
          - name: call
            action: core.http
            input: {url: "https://x.example", method: "{{ parameters.verb }}"}
        """
    ).node("call")
    assert check_definition(graph_of(POST), AOS_POLICY).violations  # literal POST
    assert reasons(check_dispatch(node, {"method": "DELETE"}, AOS_POLICY)) == {
        Reason.UNDECLARED_SIDE_EFFECTS
    }
    assert check_dispatch(node, {"method": "GET"}, AOS_POLICY).valid


# -- policies as data ----------------------------------------------------------------------------


def test_policies_from_the_setting_json_or_file(tmp_path: Path) -> None:
    assert policies_from_setting(None).for_workflow("attune", "default") is None
    assert policies_from_setting(None).for_workflow("aos", "default") == AOS_POLICY
    inline = policies_from_setting(
        '{"workflows": {"forbidden_actions": ["core.shell"]},'
        ' "workspaces": {"team": {"undeclared_side_effects": "violation"}}}'
    )
    workflows = inline.for_workflow("attune", "default")
    assert workflows is not None
    assert workflows.forbidden_actions == ("core.shell",)
    team = inline.for_workflow("attune", "team")
    assert team is not None
    assert team.undeclared_side_effects is SideEffectRule.VIOLATION
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(
        textwrap.dedent(
            """\
            workflows:
              patterns:
                - {class: sql, pattern: "\\\\bsleep\\\\(", runners: [python]}
            """
        )
    )
    from_file = policies_from_setting(str(policy_file)).for_workflow("attune", "x")
    assert from_file is not None
    assert from_file.patterns == (
        PatternRule.model_validate(
            {"class": "sql", "pattern": r"\bsleep\(", "runners": ["python"]}
        ),
    )


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"workflows": {"forbiden_actions": []}}', "workflows.forbiden_actions: Extra inputs"),
        ('{"aos": {"patterns": [{"class": "sql", "pattern": "("}]}}', "is not a regular expr"),
        ('{"aos": {"patterns": [{"class": "xss", "pattern": "<"}]}}', "aos.patterns.0.class"),
        ('{"aos": {"patterns": [{"class": "sql", "pattern": "x", "runners": ["ftp"]}]}}', "ftp"),
        ("{not json", "TREADLE_SANDBOX_POLICY is not a JSON object"),
        ("/no/such/policy.yaml", "cannot read the sandbox policy /no/such/policy.yaml"),
    ],
)
def test_a_bad_policy_names_the_setting_and_the_field(value: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=r"TREADLE_SANDBOX_POLICY|sandbox policy") as info:
        policies_from_setting(value)
    assert message in str(info.value)


def test_a_single_policy_file_names_its_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"p.json: literal_inputs: Input should be"):
        policy_from({"literal_inputs": "maybe"}, str(tmp_path / "p.json"))


def test_a_refusal_is_a_parameter_error_carrying_the_report() -> None:
    report = check_parameters({"q": "1 UNION SELECT 1"}, DEFAULT)
    refusal = SandboxRefusal(report, workflow="t.one")
    assert isinstance(refusal, ParameterError)
    assert refusal.report is report
    assert str(refusal) == (
        "invalid start of 't.one' (sandbox policy): parameter 'q' looks like sql injection "
        "(UNION SELECT)"
    )
