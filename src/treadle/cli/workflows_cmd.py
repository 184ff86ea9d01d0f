"""``treadle workflows register|versions|diff``: publish definitions, show their history.

Applications start runs by ref (``Client.start("pack.flow")``) from the versions published
in ``TREADLE_DATABASE_URL``. The scheduler publishes its packs' workflows as runs need them;
this command publishes definitions ahead of time, or ones no scheduler has loaded: workflow
files, pack folders (every workflow in them) and folders of packs.

Everything is validated first, as ``treadle validate`` does (exit 2 with ``path:line:col``
problems, nothing published); then all definitions are published in one transaction. Each
prints ``ref vN (new|unchanged)``: an unchanged definition keeps its version. The author
of a new version is the login of whoever registered it.

``treadle workflows versions REF`` lists the versions (hash, author, time, how many runs
were started on each: runs stay pinned to their version); ``treadle workflows diff REF
[A [B]]`` prints a unified diff of two versions' definitions (default: the last two).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

from treadle.cli.clients import ApiOption, TokenOption
from treadle.cli.support import (
    ExitCode,
    fail,
    identity,
    load_catalog,
    load_settings,
    print_issues,
    print_json,
)

if TYPE_CHECKING:
    from treadle.client import Client
    from treadle.common.catalog import Catalog
    from treadle.common.spec import WorkflowSpec

T = TypeVar("T")

workflows_app = typer.Typer(
    help="Publish workflow definitions; list and compare their versions.", no_args_is_help=True
)


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

    _upgrade_embedded(settings.database_url)
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


# -- versions ----------------------------------------------------------------------------------


@workflows_app.command("versions")
def list_versions(
    ref: Annotated[str, typer.Argument(help="The workflow's ref.", show_default=False)],
    as_json: Annotated[bool, typer.Option("--json", help="As a JSON list.")] = False,
    api: ApiOption = None,
    token: TokenOption = None,
) -> None:
    """The published versions of a workflow: version, hash, author, time, runs using it."""
    from treadle.cli.clients import command_client
    from treadle.scheduler.core.namespaces import iso

    with command_client(api, token, prepare=_upgrade_embedded) as client:
        versions = _call(lambda: client.versions(ref))
    if as_json:
        print_json(
            [
                {
                    "version": v.version,
                    "content_hash": v.content_hash,
                    "author": v.author,
                    "created_at": iso(v.created_at),
                    "dialect": v.dialect,
                    "runs": v.runs,
                }
                for v in versions
            ]
        )
        return
    typer.echo(f"{'version':>7}  {'hash':<12}  {'author':<16}  {'created_at':<27}  runs")
    for v in versions:
        author = v.author or "-"
        typer.echo(
            f"{'v' + str(v.version):>7}  {v.short_hash:<12}  {author:<16}  "
            f"{iso(v.created_at) or '':<27}  {v.runs}"
        )


@workflows_app.command("diff")
def diff_versions(
    ref: Annotated[str, typer.Argument(help="The workflow's ref.", show_default=False)],
    old: Annotated[
        int | None,
        typer.Argument(help="The older version (default: the one before NEW).", show_default=False),
    ] = None,
    new: Annotated[
        int | None,
        typer.Argument(help="The newer version (default: the latest).", show_default=False),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Compare pretty-printed JSON instead of YAML.")
    ] = False,
) -> None:
    """A unified diff of two versions of a workflow (default: the last two).

    With one version given, it is compared with the latest. Prints nothing when the two
    definitions are the same.
    """
    from treadle.clientlib.versions import unified_diff

    with _client() as client:
        published = [v.version for v in _call(lambda: client.versions(ref))]
        for wanted in (old, new):
            if wanted is not None and wanted not in published:
                fail(
                    f"workflow '{ref}' has no version {wanted} "
                    f"(published: {', '.join(str(v) for v in published)})"
                )
        if old is None:
            if len(published) < 2:
                fail(f"workflow '{ref}' has only version {published[0]}; nothing to compare")
            old, new = published[-2], published[-1]
        elif new is None:
            new = published[-1]
        before = _call(lambda: client.definition_text(ref, old, as_json=as_json))
        after = _call(lambda: client.definition_text(ref, new, as_json=as_json))
    typer.echo(
        unified_diff(before, after, old_label=f"{ref}@v{old}", new_label=f"{ref}@v{new}"),
        nl=False,
    )


def _client() -> Client:
    from treadle.client import Client
    from treadle.common.errors import ConfigurationError

    settings = load_settings()
    _upgrade_embedded(settings.database_url)
    try:
        return Client(settings=settings, identity=identity())
    except ConfigurationError as exc:
        fail(str(exc))


def _upgrade_embedded(database_url: str) -> None:
    """A SQLite database is the embedded mode's own: bring its schema up to date, as every
    embedded command does (``treadle run`` may not have created it yet). A shared
    PostgreSQL database is left alone: ``treadle db upgrade`` or the scheduler upgrades it."""
    if not database_url.startswith("sqlite"):
        return
    from treadle.common.errors import ConfigurationError, ServiceUnavailable
    from treadle.scheduler.store import Store

    try:
        Store.open(database_url).close()
    except ConfigurationError as exc:
        fail(str(exc))
    except ServiceUnavailable as exc:
        fail(str(exc), ExitCode.FAILED)


def _call(call: Callable[[], T]) -> T:
    """``call()``, its failures turned into the CLI's messages and exit codes."""
    from treadle.common.errors import ConfigurationError, NotFound, ServiceUnavailable

    try:
        return call()
    except NotFound as exc:
        fail(str(exc))
    except ConfigurationError as exc:
        fail(str(exc))
    except ServiceUnavailable as exc:
        fail(str(exc), ExitCode.FAILED)
