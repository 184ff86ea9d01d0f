"""``treadle run``: validate a workflow, start it and follow it to its end.

Embedded by default (this process runs the scheduler and a worker pool on SQLite). With
``--distributed`` the definition is published to ``TREADLE_DATABASE_URL`` and the run is
started through :class:`treadle.Client` for the ``treadle scheduler`` and ``treadle worker``
services to run; this command only follows it by polling the database. With ``--api`` the
run of a published workflow is started and followed through the HTTP API instead
(:class:`treadle.ApiClient`): no database credentials needed. Either way the output and the
exit codes are the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from treadle.cli.clients import ApiOption, TokenOption
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
    print_issues,
    print_json,
    refused,
    resolve_target,
)

if TYPE_CHECKING:  # imported lazily below: the CLI starts fast
    from treadle.client import Client
    from treadle.common.budget import Budget
    from treadle.common.catalog import Catalog
    from treadle.common.settings import Settings
    from treadle.common.spec import WorkflowSpec
    from treadle.scheduler.core.state import RunState


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
    distributed: Annotated[
        bool,
        typer.Option(
            "--distributed",
            help="Publish the workflow to TREADLE_DATABASE_URL and start the run there for "
            "`treadle scheduler` and `treadle worker` to run; follow it from the database.",
        ),
    ] = False,
    wait_timeout: Annotated[
        float | None,
        typer.Option(
            "--wait-timeout",
            min=0,
            help="With --distributed or --api: stop following after this many seconds "
            "(exit 1); the run goes on.",
            show_default=False,
        ),
    ] = None,
    priority: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=9,
            help="The run's priority, 0-9 (9 first); default: the workflow's, else 5.",
            show_default=False,
        ),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(
            min=0,
            max=2**63 - 1,
            help="The run's seed (system.seed, per-step seeds, uuid()); default: a random one.",
            show_default=False,
        ),
    ] = None,
    budget: Annotated[
        list[str] | None,
        typer.Option(
            "--budget",
            help="A limit of the run's budget, winning over the workflow's: NAME=VALUE, NAME "
            "one of cost_usd, wall_time, attempts, items, soft_ratio, step_cost_usd "
            "(repeatable).",
            show_default=False,
        ),
    ] = None,
    api: ApiOption = None,
    token: TokenOption = None,
) -> None:
    """Run a workflow here (SQLite, in-process workers), or with --distributed on the services.

    With --api, TARGET is the ref of a workflow published on the services: the run is
    started and followed through the HTTP API.
    """
    from treadle.cli.clients import api_url
    from treadle.cli.controls import budget_option

    remote = api_url(api)
    if wait_timeout is not None and not (distributed or remote):
        fail("--wait-timeout applies only with --distributed or --api")
    limits = budget_option(budget)
    if remote:
        if pack_path:
            fail("--pack-path applies only without --api (the services have the packs)")
        parameters = parse_parameters(param or [], params_file)
        code = run_over_api(
            api,
            token,
            target,
            parameters,
            as_json=as_json,
            quiet=quiet,
            wait_timeout=wait_timeout,
            priority=priority,
            seed=seed,
            budget=limits,
        )
        raise typer.Exit(int(code))
    settings = load_settings()
    catalog = load_catalog(settings, pack_path or [])
    spec = resolve_target(target, catalog)
    graph = check_definition(spec, catalog)
    parameters = parse_parameters(param or [], params_file)
    if distributed:
        code = run_distributed(
            settings,
            catalog,
            spec,
            parameters,
            as_json=as_json,
            quiet=quiet,
            wait_timeout=wait_timeout,
            priority=priority,
            seed=seed,
            budget=limits,
        )
        raise typer.Exit(int(code))

    from treadle.clientlib.audit import database_principal
    from treadle.common.errors import ParameterError
    from treadle.common.heap import freeze_start_up
    from treadle.embedded import EmbeddedRunner
    from treadle.scheduler.service.starting import RunOptions

    options = RunOptions(identity=identity(), priority=priority, seed=seed, budget=limits)
    by = database_principal(identity())  # cli:<login>
    with EmbeddedRunner.open(settings, catalog) as runner:
        freeze_start_up()  # this process's start-up is done: common/heap.py
        try:
            run_id = runner.start(spec, parameters, options, graph=graph, by=by)
        except ParameterError as exc:
            refused(spec.ref, exc)
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
    return report_run(document, waiting=result.waiting, as_json=as_json)


def report_run(document: dict[str, Any], *, waiting: bool, as_json: bool) -> ExitCode:
    """Print where a followed run stopped (stdout: output or document) and its exit code."""
    from treadle.common.statuses import RunStatus

    if as_json:
        print_json(document)
    else:
        _print_summary(document, waiting=waiting)
    return exit_code_for(RunStatus(document["status"]), waiting=waiting)


def run_distributed(
    settings: Settings,
    catalog: Catalog,
    spec: WorkflowSpec,
    parameters: dict[str, Any],
    *,
    as_json: bool,
    quiet: bool,
    wait_timeout: float | None,
    priority: int | None = None,
    seed: int | None = None,
    budget: Budget | None = None,
) -> ExitCode:
    """Publish ``spec``, start it through the client, follow it in the database, report."""
    from treadle.client import Client
    from treadle.common.errors import (
        ConfigurationError,
        DefinitionError,
        ParameterError,
        ServiceUnavailable,
    )

    try:
        client = Client(settings=settings, identity=identity())
    except ConfigurationError as exc:
        fail(str(exc))
    with client:
        try:
            run_id = client.start_spec(
                spec, parameters, catalog=catalog, priority=priority, seed=seed, budget=budget
            )
        except ParameterError as exc:
            refused(spec.ref, exc)
        except DefinitionError as exc:
            print_issues(exc.issues)
            raise typer.Exit(int(ExitCode.INVALID)) from None
        except ConfigurationError as exc:
            fail(str(exc))
        except ServiceUnavailable as exc:
            fail(str(exc), ExitCode.FAILED)
        try:
            return _follow_in_database(client, run_id, spec.ref, as_json, quiet, wait_timeout)
        except ServiceUnavailable as exc:
            fail(f"{exc} (run {run_id} goes on without this command)", ExitCode.FAILED)


def _follow_in_database(
    client: Client,
    run_id: str,
    workflow: str,
    as_json: bool,
    quiet: bool,
    wait_timeout: float | None,
) -> ExitCode:
    from treadle.cli.follow_db import DatabaseFollower, Followed, stall_hint_after
    from treadle.clientlib.connection import reaching
    from treadle.scheduler.service.run_document import run_document

    progress = progress_for(quiet=quiet)
    if progress is not None:
        progress.start(run_id, workflow)
    shown: list[RunState] = []

    def show(state: RunState) -> None:
        shown[:] = [state]
        if progress is not None:
            progress.update(state)

    follower = DatabaseFollower(client.store, database=client.database)
    followed: Followed | None = None
    try:
        followed = follower.follow(
            run_id,
            on_change=show,
            on_stall=lambda hint: typer.echo(f"hint: {hint}", err=True),
            wait_timeout=wait_timeout,
            stall_after=stall_hint_after(wait_timeout),
        )
    except KeyboardInterrupt:
        typer.echo(
            f"stopped following run {run_id}; it goes on: treadle runs show {run_id}", err=True
        )
        raise typer.Exit(130) from None
    finally:
        if progress is not None and shown:
            waiting = followed is not None and followed.waiting
            progress.finish(followed.state if followed else shown[0], waiting=waiting)
    if followed.gave_up:
        fail(
            f"run {run_id} is still {followed.state.status.value} after {wait_timeout:g} s "
            f"(--wait-timeout); it goes on without this command: treadle runs show {run_id}",
            ExitCode.FAILED,
        )
    with reaching(client.store), client.store.unit_of_work() as uow:
        inquiries = uow.list_inquiries(run_id=run_id)
    document = run_document(followed.state, inquiries)
    return report_run(document, waiting=followed.waiting, as_json=as_json)


def run_over_api(
    api: str | None,
    token: str | None,
    ref: str,
    parameters: dict[str, Any],
    *,
    as_json: bool,
    quiet: bool,
    wait_timeout: float | None,
    priority: int | None = None,
    seed: int | None = None,
    budget: Budget | None = None,
) -> ExitCode:
    """Start a run of the published ``ref`` through the HTTP API, follow it there, report."""
    from treadle.cli.clients import command_client
    from treadle.cli.follow_api import DocumentProgress, FollowedDocument, follow_documents
    from treadle.common.errors import NotFound, ParameterError, ServiceUnavailable

    if Path(ref).is_file():
        fail(
            f"with --api, TARGET is the ref of a workflow published on the services; publish "
            f"{ref} first (treadle workflows register {ref}) and run it by its ref"
        )
    with command_client(api, token) as client:
        try:
            run_id = client.start(ref, parameters, priority=priority, seed=seed, budget=budget)
        except ParameterError as exc:
            refused(ref, exc)
        except NotFound as exc:
            fail(str(exc))
        progress = None if quiet else DocumentProgress()
        if progress is not None:
            progress.start(run_id, ref)
        followed: FollowedDocument | None = None
        try:
            followed = follow_documents(
                client,
                run_id,
                on_change=progress.update if progress is not None else None,
                wait_timeout=wait_timeout,
            )
        except KeyboardInterrupt:
            typer.echo(
                f"stopped following run {run_id}; it goes on: treadle runs show {run_id}", err=True
            )
            raise typer.Exit(130) from None
        except ServiceUnavailable as exc:
            fail(f"{exc} (run {run_id} goes on without this command)", ExitCode.FAILED)
        finally:
            if progress is not None and followed is not None:
                progress.finish(followed.document, waiting=followed.waiting)
    if followed.gave_up:
        fail(
            f"run {run_id} is still {followed.document['status']} after {wait_timeout:g} s "
            f"(--wait-timeout); it goes on without this command: treadle runs show {run_id}",
            ExitCode.FAILED,
        )
    return report_run(followed.document, waiting=followed.waiting, as_json=as_json)


def _print_summary(document: dict[str, Any], *, waiting: bool) -> None:
    import json

    status = document["status"]
    if waiting:
        typer.echo(f"run {document['id']} is waiting", err=True)
        for inquiry in document["inquiries"]:
            if inquiry["status"] == "pending":
                asker = f"task {inquiry['task']}" if inquiry.get("task") else "the run's budget"
                typer.echo(
                    f"  inquiry {inquiry['id']} ({asker}): {inquiry['prompt']}\n"
                    f"  answer with: treadle inquiry respond {inquiry['id']} --data '<json>'",
                    err=True,
                )
        return
    if status == "succeeded":
        typer.echo(json.dumps(document["output"], indent=2, ensure_ascii=False, default=str))
        return
    error = document.get("error") or {}
    message = error.get("message")
    stopped = (document.get("budget") or {}).get("stopped")
    if status in ("paused", "pausing") and stopped and not stopped["soft"]:
        message = (
            f"stopped by its {stopped['kind']} budget ({stopped['message']}); resume it with a "
            f"higher limit: treadle runs resume {document['id']} --budget {stopped['kind']}=..."
        )
    elif status in ("paused", "pausing") and stopped:
        message = (
            f"{stopped['message']} answer with: treadle inquiry respond {stopped['inquiry']} "
            """--data '{"continue": true}'"""
        )
    elif status in ("paused", "pausing"):
        message = f"resume it with: treadle runs resume {document['id']}"
    typer.echo(f"run {document['id']} {status}" + (f": {message}" if message else ""), err=True)
