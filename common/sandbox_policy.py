"""The plan sandbox's policy as data: forbidden actions, injection patterns, side effects.

A :class:`SandboxPolicy` says what a run may not do; :mod:`treadle.common.sandbox_check`
applies it (before a run starts, and to each rendered input at dispatch). AOS plans are
always checked, under :data:`AOS_POLICY` unless the deployment gives another; other
workflows are checked only where ``TREADLE_SANDBOX_POLICY`` gives a policy for every
workspace or for theirs (:class:`SandboxPolicies`). ``docs/governance.md`` has the table
of the default patterns and why each is scoped as it is.
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Final

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from treadle.common.dialects.shared import AOS as AOS_DIALECT
from treadle.common.errors import ConfigurationError
from treadle.common.spec import RunnerType


class PatternClass(StrEnum):
    """The kinds of injection the sandbox looks for in inputs and parameters."""

    COMMAND = "command"
    SQL = "sql"
    PATH_TRAVERSAL = "path_traversal"
    TEMPLATE = "template"


class SideEffectRule(StrEnum):
    """What an action that writes without declaring ``side_effects: true`` is."""

    VIOLATION = "violation"
    WARNING = "warning"
    IGNORE = "ignore"


#: ``runners`` value of a pattern looked for in the input of every action.
EVERY_RUNNER: Final = "*"
_RUNNER_NAMES: Final = frozenset({EVERY_RUNNER, *(r.value for r in RunnerType)})


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class PatternRule(_Frozen):
    """One injection pattern (a regular expression, matched ignoring case) of a class,
    looked for in the inputs of the actions whose runner is in ``runners`` (``*``: all)."""

    pattern_class: PatternClass = Field(alias="class")
    pattern: str
    runners: tuple[str, ...] = (EVERY_RUNNER,)
    #: What the pattern finds, for people (reports show it, else the pattern).
    label: str | None = None

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"{value!r} is not a regular expression: {exc}") from None
        return value

    @field_validator("runners")
    @classmethod
    def _known_runners(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        unknown = sorted(set(value) - _RUNNER_NAMES)
        if unknown or not value:
            raise ValueError(
                f"runners must be some of {sorted(_RUNNER_NAMES)}, not {unknown or 'none'}"
            )
        return value

    def applies_to(self, runner: RunnerType | None) -> bool:
        """Whether the input of an action run by ``runner`` is looked at."""
        return EVERY_RUNNER in self.runners or (runner is not None and runner.value in self.runners)

    @property
    def everywhere(self) -> bool:
        return EVERY_RUNNER in self.runners

    @property
    def regex(self) -> re.Pattern[str]:
        return _compiled(self.pattern)


@lru_cache(maxsize=512)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def _rules(
    pattern_class: PatternClass, runners: tuple[str, ...], *patterns: tuple[str, str]
) -> list[PatternRule]:
    return [
        PatternRule(pattern_class=pattern_class, pattern=pattern, runners=runners, label=label)
        for pattern, label in patterns
    ]


_SHELL: Final = (RunnerType.SHELL.value,)
_ALL: Final = (EVERY_RUNNER,)
#: Commands an injected shell fragment typically runs.
_COMMANDS: Final = (
    r"(rm|cat|curl|wget|nc|ncat|bash|sh|zsh|python[0-9.]*|perl|ruby|php|chmod|chown|mv|cp"
    r"|dd|mkfs|shutdown|reboot|kill|whoami|id|uname|env|printenv|base64|eval|exec)\b"
)

#: The default patterns; ``docs/governance.md`` lists them with examples.
DEFAULT_PATTERNS: Final = (
    # In a shell action's input any of these starts another command.
    *_rules(
        PatternClass.COMMAND,
        _SHELL,
        (r";", "';' in a shell action's input"),
        (r"&&", "'&&' in a shell action's input"),
        (r"\|", "'|' in a shell action's input"),
        (r"`", "a backtick in a shell action's input"),
        (r"\$\(", "'$(' in a shell action's input"),
    ),
    # Elsewhere only the shape of an injected command: free text may hold ';' or '|'.
    *_rules(
        PatternClass.COMMAND,
        _ALL,
        (r";\s*" + _COMMANDS, "';' followed by a command"),
        (r"\|\s*" + _COMMANDS, "'|' followed by a command"),
        (r"&&\s*" + _COMMANDS, "'&&' followed by a command"),
        (r"`[^`]+`", "a command in backticks"),
        (r"\$\([^)]*\)", "a command substitution '$(...)'"),
    ),
    *_rules(
        PatternClass.SQL,
        _ALL,
        (r"['\"]\s*(or|and)\s+['\"]?(\w+)['\"]?\s*=\s*['\"]?\2\b", "a quote, then OR x=x"),
        (r"\bor\s+(\d+)\s*=\s*\1\b", "OR 1=1"),
        (r";\s*(drop|delete|truncate|alter|insert|update|create|grant|exec)\s", "'; DROP ...'"),
        (r"\bunion\s+(all\s+)?select\b", "UNION SELECT"),
        (r"['\"]\s*--", "a quote, then a '--' comment"),
    ),
    *_rules(
        PatternClass.PATH_TRAVERSAL,
        _ALL,
        (r"\.\.[/\\]", "'../'"),
        (r"%2e%2e", "an encoded '..' (%2e%2e)"),
        (r"%252e%252e", "a twice-encoded '..' (%252e%252e)"),
        (r"(?<![\w.~-])/(etc|proc)(/|$)", "an absolute path into /etc or /proc"),
    ),
    # Text that would be evaluated again: only in rendered values and parameters (a
    # definition's own input is a template by design).
    *_rules(
        PatternClass.TEMPLATE,
        _ALL,
        (r"\{\{", "'{{'"),
        (r"\{%", "'{%'"),
        (r"\$\{", "'${'"),
    ),
)

#: The AOS planner sandbox's forbidden skills (``docs/governance.md``).
DEFAULT_FORBIDDEN: Final = (
    "shell_exec",
    "os_command",
    "db_drop",
    "file_delete",
    "network_raw",
    "eval_code",
    "system_call",
)


class SandboxPolicy(_Frozen):
    """What a checked run may not do.

    * ``forbidden_actions``: refs (``pack.name``) or bare names (any pack's action of that
      name; an AOS skill ``shell_exec`` is ``aos.shell_exec``);
    * ``patterns``: the injection patterns, each scoped by runner (:class:`PatternRule`);
    * ``literal_inputs``: whether the definition's own literal inputs are checked too (an
      AOS plan's are written by a planner), not only parameters and rendered values;
    * ``undeclared_side_effects``: what an action that writes (an HTTP action with a
      method in ``writing_methods``, or one named in ``writing_actions``) and does not
      declare ``side_effects: true`` is; ``http_actions`` names actions that make HTTP
      requests besides those of the ``http`` runner (AOS's ``http_call`` skill).
    """

    forbidden_actions: tuple[str, ...] = DEFAULT_FORBIDDEN
    patterns: tuple[PatternRule, ...] = DEFAULT_PATTERNS
    literal_inputs: bool = True
    undeclared_side_effects: SideEffectRule = SideEffectRule.WARNING
    http_actions: tuple[str, ...] = ("http_call",)
    writing_methods: tuple[str, ...] = ("POST", "PUT", "PATCH", "DELETE")
    writing_actions: tuple[str, ...] = ("db_write", "file_write")

    @field_validator("writing_methods")
    @classmethod
    def _upper(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(method.upper() for method in value)

    def forbids(self, action: str) -> bool:
        return _named(action, self.forbidden_actions)

    def makes_requests(self, action: str, runner: RunnerType | None) -> bool:
        return runner is RunnerType.HTTP or _named(action, self.http_actions)

    def writes(self, action: str) -> bool:
        return _named(action, self.writing_actions)


def _named(action: str, names: tuple[str, ...]) -> bool:
    """Whether ``action`` is one of ``names``: by its ref, or by its name in any pack."""
    bare = action.split(".", 1)[1] if "." in action else action
    return action in names or bare in names


#: The policy every AOS plan runs under unless ``TREADLE_SANDBOX_POLICY`` gives another:
#: the default one, with writes that declare no side effects refused.
AOS_POLICY: Final = SandboxPolicy(undeclared_side_effects=SideEffectRule.VIOLATION)


class SandboxPolicies(_Frozen):
    """What ``TREADLE_SANDBOX_POLICY`` holds: the policy of AOS plans, and optionally one
    for every other workflow and one per workspace (a workspace's own wins)."""

    aos: SandboxPolicy = AOS_POLICY
    workflows: SandboxPolicy | None = None
    workspaces: dict[str, SandboxPolicy] = Field(default_factory=dict)

    def for_workflow(self, dialect: str, workspace: str) -> SandboxPolicy | None:
        """The policy a run of a workflow of ``dialect`` in ``workspace`` is checked
        under, or ``None`` when it is not checked."""
        if dialect == AOS_DIALECT:
            return self.aos
        return self.workspaces.get(workspace, self.workflows)

    def to_check(self, dialect: str, workspace: str) -> SandboxPolicy:
        """The policy ``treadle validate --policy`` checks with: the one in force, else
        the default policy."""
        return self.for_workflow(dialect, workspace) or SandboxPolicy()


SETTING: Final = "TREADLE_SANDBOX_POLICY"


def read_policy_file(path: str) -> object:
    """The JSON or YAML document in ``path`` (ConfigurationError naming it otherwise)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot read the sandbox policy {path}: {exc.strerror}") from None
    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigurationError(f"the sandbox policy {path} is not YAML or JSON: {exc}") from None


def policy_from(data: object, where: str) -> SandboxPolicy:
    """A single policy (``treadle validate --policy FILE``), problems naming ``where``."""
    try:
        return SandboxPolicy.model_validate(data or {})
    except ValidationError as exc:
        raise ConfigurationError(f"{where}: {_problems(exc)}") from None


@lru_cache(maxsize=8)
def policies_from_setting(value: str | None) -> SandboxPolicies:
    """The policies ``TREADLE_SANDBOX_POLICY`` gives: a JSON object, or the path of a JSON
    or YAML file (read once per process). Unset: AOS plans under :data:`AOS_POLICY`, no
    other workflow checked."""
    if value is None or not value.strip():
        return SandboxPolicies()
    text = value.strip()
    where = SETTING
    if text.startswith("{"):
        try:
            data: object = json.loads(text)
        except ValueError as exc:
            raise ConfigurationError(f"{SETTING} is not a JSON object: {exc}") from None
    else:
        data = read_policy_file(text)
        where = f"{SETTING} ({text})"
    try:
        return SandboxPolicies.model_validate(data or {})
    except ValidationError as exc:
        raise ConfigurationError(f"{where}: {_problems(exc)}") from None


def _problems(exc: ValidationError) -> str:
    return "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'the policy'}: {error['msg']}"
        for error in exc.errors()
    )
