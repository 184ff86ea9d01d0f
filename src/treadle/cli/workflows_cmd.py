"""``treadle workflows register PATH...``: publish workflow definitions to the database.

Applications start runs by ref (``Client.start("pack.flow")``) from the versions published
in ``TREADLE_DATABASE_URL``. The scheduler publishes its packs' workflows as runs need them;
this command publishes definitions ahead of time, or ones no scheduler has loaded: workflow
files, pack folders (every workflow in them) and folders of packs.

Everything is validated first, as ``treadle validate`` does (exit 2 with ``path:line:col``
problems, nothing published); then all definitions are published in one transaction. Each
prints ``ref vN (new|unchanged)``: an unchanged definition keeps its version.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from treadle.cli.support import (
    ExitCode,
    fail,
    identity,
    load_catalog,
    load_settings,
    print_issues,
)

if TYPE_CHECKING:
    from treadle.common.catalog import Catalog
    from treadle.common.spec import WorkflowSpec

workflows_app = typer.Typer(help="Publish workflow definitions.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(workflows_app, name="workflows")


@workflows_app.command("register")
def register_workflows(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="Workflow files, pack folders, or folders of packs.", show_default=False
        ),
    ],
    pack_path: Annotated[
        list[Path] | None,
        typer.Option(
            "--pack-path",
            help="A pack (or folder of packs) whose actions the workflows call. Repeatable.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Validate workflow definitions and publish them to TREADLE_DATABASE_URL."""
    from treadle.common.source import Severity
    from treadle.common.validate import validate_paths

    settings = load_settings()
    extra = [*(Path(p) for p in settings.pack_paths), *(pack_path or [])]
    issues = validate_paths(paths, pack_paths=extra)
    print_issues(issues)
    errors = sum(1 for issue in issues if issue.severity is Severity.ERROR)
    if errors:
        fail(f"{errors} error(s); nothing was registered")
    catalog = load_catalog(settings, pack_path or [])
    specs, found = _definitions(paths)
    if not specs:
        fail("no workflow definitions found in " + ", ".join(str(p) for p in paths))
    catalog = catalog.merged(found)

    from treadle.client import Client
    from treadle.common.errors import ConfigurationError, DefinitionError, ServiceUnavailable

    try:
        with Client(settings=settings, identity=identity()) as client:
            registered = client.register_all(specs, catalog=catalog)
    except DefinitionError as exc:
        print_issues(exc.issues)
        fail("nothing was registered")
    except ConfigurationError as exc:
        fail(str(exc))
    except ServiceUnavailable as exc:
        fail(str(exc), ExitCode.FAILED)
    for item in registered:
        typer.echo(f"{item.ref} v{item.version} ({'new' if item.new else 'unchanged'})")


def _definitions(paths: list[Path]) -> tuple[list[WorkflowSpec], Catalog]:
    """The workflows under ``paths`` (files, packs, folders of packs or of workflow files),
    and a catalog of the packs found (their actions and workflows call each other)."""
    from treadle.common.catalog import Catalog
    from treadle.common.loader import PackLoader, read_workflow_file

    found = Catalog()
    by_ref: dict[str, tuple[WorkflowSpec, str]] = {}

    def add(spec: WorkflowSpec, where: str) -> None:
        if spec.ref in by_ref and by_ref[spec.ref][1] != where:
            fail(f"workflow {spec.ref} is defined twice: in {by_ref[spec.ref][1]} and {where}")
        by_ref[spec.ref] = (spec, where)

    for path in paths:
        folder = path.parent if path.name == "pack.yaml" else path
        if folder.is_dir() and _holds_packs(folder):
            catalog = PackLoader().load([folder]).catalog
            found = found.merged(catalog)
            for spec in catalog.workflows.values():
                add(spec, str(folder))
            continue
        files = sorted(folder.glob("*.y*ml")) if folder.is_dir() else [path]
        for file in files:
            loaded, _issues = read_workflow_file(str(file))
            if loaded is not None:  # validated above: every given file loads
                add(loaded, str(file))
    return [spec for spec, _ in by_ref.values()], found


def _holds_packs(folder: Path) -> bool:
    if (folder / "pack.yaml").is_file():
        return True
    return any(
        (folder / name / "pack.yaml").is_file()
        for name in os.listdir(folder)
        if not name.startswith(".")
    )
