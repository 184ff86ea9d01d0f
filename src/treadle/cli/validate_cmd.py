"""``treadle validate PATH...``: report every problem in workflow files and packs.

Each problem is printed on stdout as ``path:line:col: message`` (warnings as
``path:line:col: warning: message``), so editors and CI can jump to it; a one-line summary
goes to stderr. Exit status 0 when everything is valid (warnings allowed unless
``--strict``), 2 otherwise. Only the loader and validator are imported: no database or
broker libraries, so the command starts quickly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

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
) -> None:
    """Check workflow definitions and packs; print every problem as path:line:col: message."""
    from treadle.common.source import Severity
    from treadle.common.validate import validate_paths

    issues = validate_paths(paths, pack_paths=pack_path or (), strict=strict)
    for issue in issues:
        typer.echo(str(issue))
    errors = sum(1 for i in issues if i.severity is Severity.ERROR)
    warnings = len(issues) - errors
    failed = errors > 0 or (strict and warnings > 0)
    counted = ", ".join(
        part
        for part in (_plural(errors, "error"), _plural(warnings, "warning"))
        if not part.startswith("0 ")
    )
    targets = _plural(len(paths), "path")
    if failed:
        typer.echo(f"invalid: {counted} in {targets}", err=True)
        raise typer.Exit(EXIT_INVALID)
    typer.echo(f"valid: {targets} checked" + (f" ({counted})" if counted else ""), err=True)


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")
