"""What the plan sandbox found: ``{valid, violations, warnings}``, and the refusal it makes.

One shape for every place that checks (``treadle validate --policy``, the API, a refused
start, an attempt failed at dispatch), so a user reads the same report everywhere. A
finding names its task, the field path, the pattern class and, where the definition
still has its source, the file and line; it never holds the value that matched (it may
be a secret), only the pattern.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from treadle.common.errors import ParameterError
from treadle.common.sandbox_policy import PatternClass


class Reason(StrEnum):
    """Why something was refused (or warned about); the ``reason`` label of
    ``treadle_sandbox_refusals_total``."""

    FORBIDDEN_ACTION = "forbidden_action"
    COMMAND_INJECTION = "command_injection"
    SQL_INJECTION = "sql_injection"
    PATH_TRAVERSAL = "path_traversal"
    TEMPLATE_INJECTION = "template_injection"
    UNDECLARED_SIDE_EFFECTS = "undeclared_side_effects"


#: The reason of each pattern class.
REASON_OF_CLASS = {
    PatternClass.COMMAND: Reason.COMMAND_INJECTION,
    PatternClass.SQL: Reason.SQL_INJECTION,
    PatternClass.PATH_TRAVERSAL: Reason.PATH_TRAVERSAL,
    PatternClass.TEMPLATE: Reason.TEMPLATE_INJECTION,
}


class Finding(BaseModel):
    """One violation or warning. ``field`` is a path such as ``input.headers.Host`` or
    ``parameters.name``; ``location`` is ``file:line:col`` when known."""

    model_config = ConfigDict(frozen=True)

    reason: Reason
    message: str
    workflow: str | None = None
    task: str | None = None
    action: str | None = None
    field: str | None = None
    pattern_class: PatternClass | None = None
    pattern: str | None = None
    location: str | None = None

    def __str__(self) -> str:
        where = f"{self.location}: " if self.location else ""
        return f"{where}{self.message}"


class SandboxReport(BaseModel):
    """The result of a check: ``valid`` when there is no violation (warnings allowed)."""

    model_config = ConfigDict(frozen=True)

    valid: bool
    violations: tuple[Finding, ...] = ()
    warnings: tuple[Finding, ...] = ()

    @classmethod
    def of(cls, violations: Iterable[Finding], warnings: Iterable[Finding] = ()) -> SandboxReport:
        found = tuple(violations)
        return cls(valid=not found, violations=found, warnings=tuple(warnings))

    def merged(self, other: SandboxReport) -> SandboxReport:
        return SandboxReport.of(
            (*self.violations, *other.violations), (*self.warnings, *other.warnings)
        )

    @property
    def reasons(self) -> tuple[Reason, ...]:
        """Each reason of a violation, once, in the order found."""
        return tuple(dict.fromkeys(f.reason for f in self.violations))

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON (what ``--json``, the API and an attempt's error show)."""
        return self.model_dump(mode="json", exclude_none=True)


class SandboxRefusal(ParameterError):
    """A run refused by the sandbox before it started: nothing was stored.

    A :class:`ParameterError` (the start's input is what is refused), so every caller that
    refuses bad parameters refuses this the same way; ``report`` has every finding.
    """

    def __init__(self, report: SandboxReport, *, workflow: str) -> None:
        self.report = report
        self.workflow = workflow
        super().__init__(
            problem_lines(report.violations), subject=f"start of '{workflow}' (sandbox policy)"
        )


def problem_lines(findings: Sequence[Finding]) -> list[str]:
    """One line per finding, as the CLI prints them."""
    return [str(finding) for finding in findings]
