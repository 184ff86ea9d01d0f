"""``treadle test PACK``: run a pack's workflow tests through the pure core.

The tests are ``PACK/tests/test_workflows.yaml`` (the format: ``docs/packs.md``). Each
test's workflow is rehearsed with its scripted results, answers and child run outcomes
on a fake clock, and its expectations checked: no action runs, no database is opened.
PACK is a pack folder, or the ref of a pack on the pack path. Prints ``PASS``/``FAIL``
per test, each difference under a failing one, and a count. Exit 0 when every test
passes, 1 when one fails, 2 when the file cannot be used (every problem is printed as
``file:line:col: message`` and no test runs).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Final

import typer

from treadle.cli.support import ExitCode, fail, load_catalog, load_settings, print_issues

#: Where a pack keeps its workflow tests.
TESTS_FILE: Final = Path("tests") / "test_workflows.yaml"


def register(app: typer.Typer) -> None:
    app.command("test")(run_pack_tests)


def run_pack_tests(
    pack: Annotated[
        str, typer.Argument(help="A pack folder, or a pack's ref.", show_default=False)
    ],
    pack_path: Annotated[
        list[Path] | None,
        typer.Option(
            "--pack-path",
            help="Another pack (or folder of packs) the workflows need. Repeatable.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Run a pack's workflow tests (tests/test_workflows.yaml) without running actions."""
    from treadle.common.source import Severity
    from treadle.scheduler.workflow_tests import read_test_file, run_workflow_tests

    folder = Path(pack)
    extra = [*(pack_path or []), *([folder] if folder.is_dir() else [])]
    catalog = load_catalog(load_settings(), extra)
    if not folder.is_dir():
        found = catalog.packs.get(pack)
        if found is None or found.path is None:
            fail(f"{pack} is neither a pack folder nor the ref of a loaded pack")
        folder = Path(found.path)
    file = folder / TESTS_FILE
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        fail(f"cannot read the workflow tests {file}: {exc.strerror or exc}")
    tests, issues = read_test_file(text, str(file), catalog)
    print_issues(issues)
    if any(issue.severity is Severity.ERROR for issue in issues):
        raise typer.Exit(int(ExitCode.INVALID))
    if not tests:
        fail(f"{file} holds no tests")
    results = run_workflow_tests(tests)
    for result in results:
        if result.passed:
            typer.echo(f"PASS {result.name}")
            continue
        typer.echo(f"FAIL {result.name} ({result.loc})")
        for problem in result.problems:
            typer.echo(f"  {problem}")
    failed = sum(1 for r in results if not r.passed)
    typer.echo(f"{len(results) - failed} passed, {failed} failed")
    if failed:
        raise typer.Exit(int(ExitCode.FAILED))
