"""``treadle run``: validate a workflow, start it in embedded mode and follow it to its end."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from treadle.cli.progress import progress_for
from treadle.cli.support import (
    ExitCode,
    check_definition,
    exit_code_for,
    fail,
    identity,
    load_catalog,
    load_settings,
    parse_parameters,
    print_json,
    resolve_target,
)


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(
    target: Annotated[
        str, typer.Argument(help="A workflow file, or the ref of a workflow in the packs.")
    ],
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="KEY=VALUE; the value is JSON when it parses as JSON."),
    ] = None,
    params_file: Annotated[
        Path | None, typer.Option("--params-file", help="A JSON or YAML file of parameters.")
    ] = None,
    pack_path: Annotated[
        list[Path] | None, typer.Option("--pack-path", help="Another folder of packs (repeatable).")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run document as JSON.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")] = False,
) -> None:
    """Run a workflow on this machine (SQLite, an in-process worker pool, no servers)."""
    settings = load_settings()
    catalog = load_catalog(settings, pack_path or [])
    spec = resolve_target(target, catalog)
    check_definition(spec, catalog)
    parameters = parse_parameters(param or [], params_file)

    from treadle.common.errors import ParameterError
    from treadle.embedded import EmbeddedRunner
    from treadle.scheduler.service.runs import RunOptions

    with EmbeddedRunner.open(settings, catalog) as runner:
        try:
            run_id = runner.start(spec, parameters, RunOptions(identity=identity()))
        except ParameterError as exc:
            fail("\n  ".join([f"invalid parameters for {spec.ref}:", *exc.problems]))
        outcome = follow_and_report(runner, run_id, as_json=as_json, quiet=quiet)
    raise typer.Exit(int(outcome))


def follow_and_report(runner: Any, run_id: str, *, as_json: bool, quiet: bool) -> ExitCode:
    """Follow ``run_id`` with progress on stderr; print the result; return the exit code."""
    from treadle.scheduler.service.run_document import run_document

    progress = progress_for(quiet=quiet or False)
    state = runner.runs.load(run_id)
    if progress is not None:
        progress.start(run_id, state.workflow)
    result = None
    try:
        result = runner.follow(run_id, on_change=progress.update if progress else None)
    finally:
        if progress is not None:
            waiting = result is not None and result.waiting
            progress.finish(runner.state_of(run_id), waiting=waiting)
    with runner.store.unit_of_work() as uow:
        inquiries = uow.list_inquiries(run_id=run_id)
    document = run_document(result.state, inquiries)
    if as_json:
        print_json(document)
    else:
        _print_summary(document, waiting=result.waiting)
    return exit_code_for(result.state.status, waiting=result.waiting)


def _print_summary(document: dict[str, Any], *, waiting: bool) -> None:
    import json

    status = document["status"]
    if waiting:
        typer.echo(f"run {document['id']} is waiting", err=True)
        for inquiry in document["inquiries"]:
            if inquiry["status"] == "pending":
                typer.echo(
                    f"  inquiry {inquiry['id']} (task {inquiry['task']}): {inquiry['prompt']}\n"
                    f"  answer with: treadle inquiry respond {inquiry['id']} --data '<json>'",
                    err=True,
                )
        return
    if status == "succeeded":
        typer.echo(json.dumps(document["output"], indent=2, ensure_ascii=False, default=str))
        return
    error = document.get("error") or {}
    typer.echo(f"run {document['id']} {status}: {error.get('message', '')}", err=True)
