"""``treadle inquiry list|show|respond``: questions runs put to people, and their answers.

Embedded by default: ``respond`` records the answer and carries the run on in this
process. With ``--distributed`` the commands read and write ``TREADLE_DATABASE_URL`` as a
client (no schema upgrade, a bounded connect time): ``respond`` checks the answer against
the inquiry's schema, records it and applies it to the run in one transaction, waking the
schedulers, and runs nothing here. With ``--api URL`` (or ``TREADLE_API_URL``) they do the
same through the HTTP API, printing the same.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from treadle.cli.clients import ApiOption, TokenOption
from treadle.cli.support import (
    ExitCode,
    fail,
    identity,
    load_catalog,
    load_settings,
    print_json,
)

inquiry_app = typer.Typer(help="Answer the questions runs wait on.", no_args_is_help=True)

_DISTRIBUTED_HELP = "Use TREADLE_DATABASE_URL as a client of the services (PostgreSQL)."


def register(app: typer.Typer) -> None:
    app.add_typer(inquiry_app, name="inquiry")


#: The fields of an inquiry the commands print, in this order.
_FIELDS = (
    "id",
    "run",
    "task",
    "purpose",
    "status",
    "prompt",
    "schema",
    "assigned_to",
    "deadline",
    "response",
    "responder",
)


def _printed(shown: dict[str, Any]) -> dict[str, Any]:
    """An inquiry as shown (its run's secret values masked, as in the run document: a
    prompt or a schema may have been rendered from one), with the fields printed."""
    return {name: shown.get(name) for name in _FIELDS}


@inquiry_app.command("list")
def list_inquiries(
    status: Annotated[
        str | None, typer.Option(help="pending, answered, timed_out, canceled")
    ] = "pending",
    run: Annotated[str | None, typer.Option(help="Only this run's inquiries.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    distributed: Annotated[bool, typer.Option("--distributed", help=_DISTRIBUTED_HELP)] = False,
    api: ApiOption = None,
    token: TokenOption = None,
) -> None:
    """Inquiries (pending ones by default)."""
    from treadle.cli.clients import command_client, upgrade_database
    from treadle.common.statuses import InquiryStatus

    try:
        wanted = InquiryStatus(status) if status and status != "all" else None
    except ValueError:
        fail(f"unknown status {status!r}")
    with command_client(api, token, prepare=None if distributed else upgrade_database) as client:
        entries = [_printed(shown) for shown in client.inquiries(status=wanted, run=run)]
    if as_json:
        print_json(entries)
        return
    for e in entries:
        who = f" (for {_assignee(e['assigned_to'])})" if e["assigned_to"] else ""
        asker = f"task {e['task']}" if e["task"] else "budget"  # a run-level one has no task
        typer.echo(f"{e['id']}  {e['status']:<9}  run {e['run']}  {asker}{who}: {e['prompt']}")


def _assignee(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


@inquiry_app.command("show")
def show_inquiry(
    inquiry_id: Annotated[str, typer.Argument()],
    distributed: Annotated[bool, typer.Option("--distributed", help=_DISTRIBUTED_HELP)] = False,
    api: ApiOption = None,
    token: TokenOption = None,
) -> None:
    """One inquiry as JSON."""
    from treadle.cli.clients import command_client, upgrade_database
    from treadle.common.errors import NotFound

    with command_client(api, token, prepare=None if distributed else upgrade_database) as client:
        try:
            entry = _printed(client.inquiry(inquiry_id))
        except NotFound:
            fail(f"no inquiry {inquiry_id}")
    print_json(entry)


@inquiry_app.command("respond")
def respond(
    inquiry_id: Annotated[str, typer.Argument()],
    data: Annotated[str, typer.Option("--data", help="The answer, as JSON.")],
    pack_path: Annotated[list[Path] | None, typer.Option("--pack-path")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the run document as JSON.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
    distributed: Annotated[
        bool,
        typer.Option(
            "--distributed",
            help="Record the answer in TREADLE_DATABASE_URL for the services to carry the "
            "run on; run nothing here.",
        ),
    ] = False,
    api: ApiOption = None,
    token: TokenOption = None,
) -> None:
    """Answer an inquiry (checked against its schema), then continue the run here."""
    from treadle.cli.clients import api_url
    from treadle.cli.run_cmd import follow_and_report
    from treadle.common.errors import ConflictError, NotFound, ParameterError
    from treadle.common.heap import freeze_start_up
    from treadle.embedded import EmbeddedRunner

    try:
        response = json.loads(data)
    except ValueError as exc:
        fail(f"--data is not JSON: {exc}")
    if distributed or api_url(api):
        if pack_path:
            fail(
                "--pack-path applies only without --distributed or --api "
                "(the services have the packs)"
            )
        _respond_distributed(
            inquiry_id, response, as_json=as_json, quiet=quiet, api=api, token=token
        )
        return
    settings = load_settings()
    catalog = load_catalog(settings, pack_path or [])
    with EmbeddedRunner.open(settings, catalog) as runner:
        freeze_start_up()  # this process's start-up is done: common/heap.py
        try:
            inquiry = _answer_here(runner, inquiry_id, response, identity().get("login"))
        except NotFound:
            fail(f"no inquiry {inquiry_id}")
        except ParameterError as exc:
            fail("\n  ".join(["the answer does not fit the inquiry's schema:", *exc.problems]))
        except ConflictError as exc:
            typer.echo(f"error: {exc}", err=True)
            _carry_on_without_the_answer(runner, inquiry_id)
            raise typer.Exit(int(ExitCode.INVALID)) from None
        root = _root_run(runner, inquiry.run_id)
        outcome = follow_and_report(runner, root, as_json=as_json, quiet=quiet)
    raise typer.Exit(int(outcome if outcome is not None else ExitCode.OK))


def _answer_here(runner: Any, inquiry_id: str, response: Any, login: str | None) -> Any:
    """Answer through the embedded runner; an inquiry whose own schema is not a JSON Schema
    is refused up front (ConflictError), as it is through the database. The answer, or
    why it was not taken, is in the audit log (``inquiry.respond`` by ``cli:<login>``)."""
    from treadle.clientlib.audit import Change, database_principal
    from treadle.common.errors import TreadleError
    from treadle.common.statuses import InquiryStatus
    from treadle.scheduler.service.inquiries import unanswerable

    by = database_principal(identity())
    try:
        with runner.store.unit_of_work() as uow:
            entry = uow.get_inquiry(inquiry_id)
        overdue = entry.deadline is not None and entry.deadline <= runner.clock()
        pending = entry.status is InquiryStatus.PENDING and not overdue  # else the runner says
        broken = unanswerable(entry) if pending else None
        if broken is not None:
            raise broken
    except TreadleError as exc:
        details = {"responder": login} if login is not None else None
        runner.auditor(by).attempted([Change("inquiry.respond", inquiry_id, details)], exc)
        raise
    return runner.respond(inquiry_id, response, login, by=by)


def _respond_distributed(
    inquiry_id: str,
    response: Any,
    *,
    as_json: bool,
    quiet: bool,
    api: str | None,
    token: str | None,
) -> None:
    """Answer through the database or the API; the run is left to the scheduler and
    workers. The responder is this login (through the API: the token's)."""
    from treadle.cli.clients import command_client
    from treadle.common.errors import ConflictError, NotFound, ParameterError

    with command_client(api, token) as client:
        try:
            entry = _printed(client.respond_document(inquiry_id, response))
        except NotFound:
            fail(f"no inquiry {inquiry_id}")
        except ParameterError as exc:
            fail("\n  ".join(["the answer does not fit the inquiry's schema:", *exc.problems]))
        except ConflictError as exc:
            fail(str(exc))
    if as_json:
        print_json(entry)
    elif not quiet:
        typer.echo(
            f"inquiry {entry['id']} answered; run {entry['run']} goes on with the services "
            f"(treadle runs show {entry['run']})"
        )


def _carry_on_without_the_answer(runner: Any, inquiry_id: str) -> None:
    """An answer that came after the deadline fired the inquiry's timeout just now: the run
    took its ``timed_out()`` branch, which nothing else would run in embedded mode."""
    from treadle.common.statuses import InquiryStatus

    with runner.store.unit_of_work() as uow:
        inquiry = uow.get_inquiry(inquiry_id)
    if inquiry.status is not InquiryStatus.TIMED_OUT:
        return
    root = _root_run(runner, inquiry.run_id)
    if runner.state_of(root).status.is_terminal:
        return
    result = runner.follow(root)
    typer.echo(f"run {root} went on without the answer: {result.state.status.value}", err=True)


def _root_run(runner: Any, run_id: str) -> str:
    """Follow from the top-level run, so a child's answer carries its parent on."""
    state = runner.runs.load(run_id)
    while state.context.parent_run_id is not None:
        state = runner.runs.load(state.context.parent_run_id)
    return str(state.run_id)
