"""``treadle validate PATH...``: report every problem in workflow files and packs.

Each problem is printed on stdout as ``path:line:col: message`` (warnings as
``path:line:col: warning: message``), so editors and CI can jump to it; a one-line summary
goes to stderr. Exit status 0 when everything is valid (warnings allowed unless
``--strict``), 2 otherwise. ``--policy`` also checks each workflow against the sandbox
policy (:mod:`.policy_report`): a violation fails too. ``--json`` prints one object
instead: ``{valid, issues, violations, warnings}``. Only the loader and validator are
imported: no database or broker libraries, so the command starts quickly.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from treadle.common.sandbox_report import SandboxReport
    from treadle.common.source import Issue

#: Exit status for an invalid definition or bad usage (shared with ``treadle run``).
EXIT_INVALID = 2


def register(app: typer.Typer) -> None:
    app.command("validate")(validate)


def validate(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Workflow files, pack folders, or folders of packs.", show_default=False
        ),
    ],
    strict: Annotated[
        bool,
        typer.Option("--strict", help="Fail on warnings too (unknown action refs become errors)."),
    ] = False,
    pack_path: Annotated[
        list[Path] | None,
        typer.Option(
            "--pack-path",
            help="A pack (or folder of packs) whose actions workflows may call. Repeatable.",
            show_default=False,
        ),
    ] = None,
    policy: Annotated[
        bool,
        typer.Option(
            "--policy",
            help="Also check each workflow against the sandbox policy (TREADLE_SANDBOX_POLICY,"
            " else the default one); a violation fails.",
        ),
    ] = False,
    policy_file: Annotated[
        Path | None,
        typer.Option(
            "--policy-file",
            help="Check against this policy (JSON or YAML) instead; implies --policy.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print {valid, issues, violations, warnings} as JSON."),
    ] = False,
) -> None:
    """Check workflow definitions and packs; print every problem as path:line:col: message."""
    from treadle.cli.policy_report import CheckedWorkflows, finding_lines, sandbox_report
    from treadle.common.errors import ConfigurationError
    from treadle.common.sandbox_report import SandboxReport
    from treadle.common.settings import settings_from_environment
    from treadle.common.source import Severity
    from treadle.common.validate import validate_paths

    checked = CheckedWorkflows()
    issues = validate_paths(paths, pack_paths=pack_path or (), strict=strict, on_workflow=checked)
    report = SandboxReport.of(())
    if policy or policy_file is not None:
        try:
            policies = settings_from_environment().sandbox_policies()
            report = sandbox_report(checked, policy_file, policies)
        except ConfigurationError as exc:
            typer.echo(f"error: {exc}", err=True)
            raise typer.Exit(EXIT_INVALID) from None
    errors = sum(1 for i in issues if i.severity is Severity.ERROR)
    warnings = len(issues) - errors
    failed = errors > 0 or (strict and warnings > 0) or not report.valid
    if as_json:
        _print_json(issues, report, valid=not failed)
    else:
        for line in [*(str(issue) for issue in issues), *finding_lines(report)]:
            typer.echo(line)
    counted = ", ".join(
        part
        for part in (
            _plural(errors, "error"),
            _plural(warnings, "warning"),
            _plural(len(report.violations), "sandbox violation"),
            _plural(len(report.warnings), "sandbox warning"),
        )
        if not part.startswith("0 ")
    )
    targets = _plural(len(paths), "path")
    if failed:
        typer.echo(f"invalid: {counted} in {targets}", err=True)
        raise typer.Exit(EXIT_INVALID)
    typer.echo(f"valid: {targets} checked" + (f" ({counted})" if counted else ""), err=True)


def _print_json(issues: list[Issue], report: SandboxReport, *, valid: bool) -> None:
    import json

    shown = [
        {
            "file": i.loc.file,
            "line": i.loc.line,
            "column": i.loc.col,
            "severity": i.severity.value,
            "message": i.message,
        }
        for i in issues
    ]
    found = report.as_dict()
    document = {"valid": valid, "issues": shown}
    document.update({k: found[k] for k in ("violations", "warnings")})
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False))


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")
