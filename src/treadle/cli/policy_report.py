"""``treadle validate --policy``: each validated workflow against the sandbox policy.

The policy is ``--policy-file`` when given (one policy, for every workflow checked), else
what ``TREADLE_SANDBOX_POLICY`` gives for the workflow's dialect in the ``default``
workspace, else the default policy (AOS plans: the AOS policy). The findings of every
workflow make one report ``{valid, violations, warnings}``, each finding naming its
workflow; text output prints one ``path:line:col: sandbox ...: message`` line per finding.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from treadle.common.access import DEFAULT_WORKSPACE
from treadle.common.catalog import Catalog
from treadle.common.graph import Graph
from treadle.common.sandbox_check import check_definition
from treadle.common.sandbox_policy import (
    SandboxPolicies,
    SandboxPolicy,
    policy_from,
    read_policy_file,
)
from treadle.common.sandbox_report import Finding, SandboxReport
from treadle.common.spec import WorkflowSpec


@dataclass
class CheckedWorkflows:
    """The workflows ``validate_paths`` validated (its ``on_workflow``), to check after."""

    found: list[tuple[WorkflowSpec, Graph | None, Catalog]] = field(default_factory=list)

    def __call__(self, spec: WorkflowSpec, graph: Graph | None, catalog: Catalog) -> None:
        self.found.append((spec, graph, catalog))


def sandbox_report(
    checked: CheckedWorkflows, policy_file: Path | None, policies: SandboxPolicies
) -> SandboxReport:
    """Every checked workflow's findings (one that could not be compiled is left to the
    validation errors). ConfigurationError for a policy file that is not a policy."""
    chosen: SandboxPolicy | None = None
    if policy_file is not None:
        chosen = policy_from(read_policy_file(str(policy_file)), str(policy_file))
    report = SandboxReport.of(())
    for spec, graph, catalog in checked.found:
        if graph is None:
            continue
        policy = chosen or policies.to_check(spec.dialect, DEFAULT_WORKSPACE)
        found = check_definition(graph, policy, action_of=catalog.actions.get)
        report = report.merged(
            SandboxReport.of(_of(spec, found.violations), _of(spec, found.warnings))
        )
    return report


def finding_lines(report: SandboxReport) -> list[str]:
    """``location: sandbox violation: message`` per finding, violations first."""
    lines = [_line(f, "sandbox violation") for f in report.violations]
    return lines + [_line(f, "sandbox warning") for f in report.warnings]


def _of(spec: WorkflowSpec, findings: Sequence[Finding]) -> list[Finding]:
    return [f.model_copy(update={"workflow": spec.ref}) for f in findings]


def _line(finding: Finding, kind: str) -> str:
    where = finding.location or finding.workflow or ""
    return f"{where}: {kind}: {finding.message}"
