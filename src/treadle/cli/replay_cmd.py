"""``treadle replay RUN_ID|GOLDEN_FILE --against WORKFLOW[@VERSION]``: certify a version.

The recorded run (from ``TREADLE_DATABASE_URL`` by id, or a golden record file, which
carries its own definition) is replayed against another definition: a stored version
(``REF@N``; ``REF`` alone is the latest) or a workflow file (validated against the packs,
for CI before it is published). The pure work is :mod:`treadle.scheduler.version_replay`;
this command only reads and prints each difference, step by step. Exit 0 when the new
version decides the same at every step, 1 when it does not, 2 when something could not be
read (no such run, version or file; an invalid workflow file).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from treadle.cli.support import ExitCode, fail, load_settings, print_json

if TYPE_CHECKING:
    from treadle.common.graph import Graph
    from treadle.scheduler.core.events import Event


def register(app: typer.Typer) -> None:
    app.command("replay")(replay)


def replay(
    recorded: Annotated[
        str, typer.Argument(help="A run id, or a golden record file.", show_default=False)
    ],
    against: Annotated[
        str,
        typer.Option(
            "--against",
            help="REF[@VERSION] of a stored version (latest without @), or a workflow file.",
            show_default=False,
        ),
    ],
    pack_path: Annotated[
        list[Path] | None,
        typer.Option(
            "--pack-path",
            help="A pack whose actions a workflow file calls. Repeatable.",
            show_default=False,
        ),
    ] = None,
    json_: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Replay a recorded run's results against another version; print where it differs."""
    from treadle.scheduler.version_replay import replay_against

    name, graph, run_id, created_at, events = _recorded(recorded)
    new_name, new_graph = _target(against, pack_path or [])
    report = replay_against(graph, new_graph, run_id, created_at, events)
    if json_:
        print_json(
            {
                "run": run_id,
                "recorded": name,
                "against": new_name,
                "identical": report.identical,
                "divergences": [d.as_json() for d in report.divergences],
            }
        )
    else:
        typer.echo(f"replaying run {run_id} ({name}) against {new_name}")
        for divergence in report.divergences:
            typer.echo(str(divergence))
        if report.identical:
            typer.echo(f"identical: the same decisions at each of {report.steps_recorded} steps")
        else:
            typer.echo(f"{len(report.divergences)} difference(s)")
    if not report.identical:
        raise typer.Exit(int(ExitCode.FAILED))


def _recorded(source: str) -> tuple[str, Graph, str, datetime, list[tuple[Event, datetime]]]:
    """The recorded run: a label, its definition's graph, id, creation time and events."""
    path = Path(source)
    if path.is_file():
        from treadle.cli.golden_files import parse_record, read_bytes
        from treadle.scheduler.service.golden import GoldenFormatError, stored_run_of

        try:
            run = stored_run_of(parse_record(path, read_bytes(path)))
        except GoldenFormatError as exc:
            fail(str(exc))
    else:
        run = _stored_run(source)
    events = [(recorded.event, recorded.at) for recorded in run.events]
    if not events:
        fail(f"run {run.state.run_id} has no events to replay")
    label = f"{run.pinned.ref} v{run.pinned.version}"
    created = run.state.created_at or events[0][1]
    return label, run.pinned.graph, run.state.run_id, created, events


def _stored_run(run_id: str) -> Any:
    from treadle.common.errors import NotFound
    from treadle.scheduler.service.renderings import load_stored_run
    from treadle.scheduler.store import Store

    store = Store.open(load_settings().database_url)
    try:
        return load_stored_run(store, run_id)
    except NotFound:
        fail(f"{run_id} is neither a golden record file nor a run in the database")
    finally:
        store.close()


def _target(against: str, pack_paths: list[Path]) -> tuple[str, Graph]:
    """The definition to replay against: a workflow file, or a stored ``REF[@N]``."""
    if Path(against).is_file():
        from treadle.cli.support import check_definition, load_catalog, resolve_target

        catalog = load_catalog(load_settings(), pack_paths)
        spec = resolve_target(against, catalog)
        graph = check_definition(spec, catalog)
        if graph is None:
            fail(f"{against} does not compile to a workflow graph")
        return f"{against} ({spec.ref})", graph
    ref, _, number = against.partition("@")
    if number and not number.isdigit():
        fail(f"--against {against}: the version after @ must be a number (REF@3)")
    version = int(number) if number else None
    return _stored_version(ref, version, against)


def _stored_version(ref: str, version: int | None, given: str) -> tuple[str, Graph]:
    from treadle.common.catalog import Catalog
    from treadle.common.errors import NotFound
    from treadle.scheduler.service.definitions import Definitions
    from treadle.scheduler.store import Store

    store = Store.open(load_settings().database_url)
    try:
        pinned = Definitions(store, Catalog()).pinned(ref, version)
    except NotFound as exc:
        fail(f"--against {given}: neither a workflow file nor a stored version ({exc})")
    finally:
        store.close()
    return f"{ref} v{pinned.version}", pinned.graph
