"""``treadle replay RUN_ID|GOLDEN_FILE --against WORKFLOW[@VERSION]``: certify a version.

The recorded run (from ``TREADLE_DATABASE_URL`` by id, or a golden record file, which
carries its own definition) is replayed against another definition: a stored version
(``REF@N``; ``REF`` alone is the latest) or a workflow file (validated against the packs,
for CI before it is published). The pure work is :mod:`treadle.scheduler.version_replay`;
this command only reads and prints each difference, step by step. With ``--api URL`` the
API replays (a run of its database, or the golden record file sent to it) against a stored
version, and counts each replay that diverged in its ``/metrics``; the output is the same.
Exit 0 when the new version decides the same at every step, 1 when it does not, 2 when
something could not be read (no such run, version or file; an invalid workflow file).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from treadle.cli.clients import ApiOption, TokenOption
from treadle.cli.support import ExitCode, fail, load_settings, print_json

if TYPE_CHECKING:
    from treadle.common.graph import Graph
    from treadle.scheduler.service.version_replays import RecordedRun


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
    api: ApiOption = None,
    token: TokenOption = None,
) -> None:
    """Replay a recorded run's results against another version; print where it differs."""
    from treadle.cli.clients import api_url

    url = api_url(api)
    if url:
        document = _replayed_by_api(url, token, recorded, against)
    else:
        from treadle.scheduler.service.version_replays import replay_recorded

        run = _recorded(recorded)
        label, graph = _target(against, pack_path or [])
        document = replay_recorded(run, label, graph).document()
    _print(document, json_=json_)


def _print(document: Mapping[str, Any], *, json_: bool) -> None:
    """The report (``Replay.document()``, or the API's), as JSON or as lines; exit 1
    unless the two runs decide alike."""
    if json_:
        print_json(document)
    else:
        typer.echo(
            f"replaying run {document['run']} ({document['recorded']}) against "
            f"{document['against']}"
        )
        for divergence in document["divergences"]:
            typer.echo(divergence["message"])
        if document["identical"]:
            steps = document["steps"]["recorded"]
            typer.echo(f"identical: the same decisions at each of {steps} steps")
        else:
            typer.echo(f"{len(document['divergences'])} difference(s)")
    if not document["identical"]:
        raise typer.Exit(int(ExitCode.FAILED))


def _replayed_by_api(url: str, token: str | None, source: str, against: str) -> dict[str, Any]:
    """The API's report: a golden record file is sent, a run id named; ``against`` must
    be a stored version there."""
    from treadle.apiclient import ApiClient
    from treadle.cli.clients import command_client
    from treadle.common.errors import ConflictError, NotFound, ParameterError

    if Path(against).is_file():
        fail(
            f"--against {against}: through the API a replay is against a stored version "
            "(REF[@VERSION]); replay against a workflow file without --api"
        )
    ref, version = _version(against)
    path = Path(source)
    with command_client(url, token) as client:
        assert isinstance(client, ApiClient)
        try:
            if path.is_file():
                from treadle.cli.golden_files import read_bytes

                return client.replay_golden(read_bytes(path), ref, version, name=source)
            return client.replay_run(source, ref, version)
        except ParameterError as exc:  # not a golden record
            fail("; ".join(exc.problems))
        except (NotFound, ConflictError) as exc:
            fail(str(exc))


def _recorded(source: str) -> RecordedRun:
    """The recorded run: a golden record file, or a run of the database."""
    from treadle.common.errors import ConflictError
    from treadle.scheduler.service.version_replays import RecordedRun

    path = Path(source)
    try:
        if path.is_file():
            from treadle.cli.golden_files import read_bytes
            from treadle.scheduler.service.golden import GoldenFormatError
            from treadle.scheduler.service.version_replays import recorded_from_golden

            try:
                return recorded_from_golden(read_bytes(path), str(path))
            except GoldenFormatError as exc:
                fail(str(exc))
        return RecordedRun.of(_stored_run(source))
    except ConflictError as exc:  # no events
        fail(str(exc))


def _version(against: str) -> tuple[str, int | None]:
    """``REF@N`` (or ``REF``) split; exit 2 when N is not a number."""
    ref, _, number = against.partition("@")
    if number and not number.isdigit():
        fail(f"--against {against}: the version after @ must be a number (REF@3)")
    return ref, int(number) if number else None


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
    ref, version = _version(against)
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
