"""``treadle inquiry list|show|respond``: questions runs put to people, and their answers.

Embedded by default: ``respond`` records the answer and carries the run on in this
process. With ``--distributed`` the commands read and write ``TREADLE_DATABASE_URL`` as a
client (no schema upgrade, a bounded connect time): ``respond`` checks the answer against
the inquiry's schema, records it and applies it to the run in one transaction, waking the
schedulers, and runs nothing here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from treadle.cli.support import (
    ExitCode,
    command_database,
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


def _entry(entry: Any) -> dict[str, Any]:
    from treadle.scheduler.core.namespaces import iso

    return {
        "id": entry.id,
        "run": entry.run_id,
        "task": entry.task,
        "status": entry.status.value,
        "prompt": entry.prompt,
        "schema": entry.schema,
        "assigned_to": entry.assigned_to,
        "deadline": iso(entry.deadline),
        "response": entry.response,
        "responder": entry.responder,
    }


def _shown(uow: Any, entries: list[Any]) -> list[dict[str, Any]]:
    """The entries as printed: values of their run's secret parameters masked, as in the
    run document (a prompt or a schema may have been rendered from one)."""
    from treadle.common.redaction import redact, secret_values_of

    secrets: dict[str, tuple[str, ...]] = {}
    shown: list[dict[str, Any]] = []
    for entry in entries:
        if entry.run_id not in secrets:
            context = uow.load_run_overview(entry.run_id, failures=0).state.context
            values = [context.parameters.get(name) for name in context.secrets]
            secrets[entry.run_id] = secret_values_of(values)
        shown.append(redact(_entry(entry), secrets[entry.run_id]))
    return shown


@inquiry_app.command("list")
def list_inquiries(
    status: Annotated[
        str | None, typer.Option(help="pending, answered, timed_out, canceled")
    ] = "pending",
    run: Annotated[str | None, typer.Option(help="Only this run's inquiries.")] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    distributed: Annotated[bool, typer.Option("--distributed", help=_DISTRIBUTED_HELP)] = False,
) -> None:
    """Inquiries (pending ones by default)."""
    from treadle.common.statuses import InquiryStatus

    try:
        wanted = InquiryStatus(status) if status and status != "all" else None
    except ValueError:
        fail(f"unknown status {status!r}")
    with command_database(distributed) as store, store.snapshot() as uow:
        entries = _shown(uow, uow.list_inquiries(status=wanted, run_id=run))
    if as_json:
        print_json(entries)
        return
    for e in entries:
        who = f" (for {_assignee(e['assigned_to'])})" if e["assigned_to"] else ""
        typer.echo(
            f"{e['id']}  {e['status']:<9}  run {e['run']}  task {e['task']}{who}: {e['prompt']}"
        )


def _assignee(value: Any) -> str:
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


@inquiry_app.command("show")
def show_inquiry(
    inquiry_id: Annotated[str, typer.Argument()],
    distributed: Annotated[bool, typer.Option("--distributed", help=_DISTRIBUTED_HELP)] = False,
) -> None:
    """One inquiry as JSON."""
    from treadle.common.errors import NotFound

    with command_database(distributed) as store, store.snapshot() as uow:
        try:
            [entry] = _shown(uow, [uow.get_inquiry(inquiry_id)])
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
) -> None:
    """Answer an inquiry (checked against its schema), then continue the run here."""
    from treadle.cli.run_cmd import follow_and_report
    from treadle.common.errors import ConflictError, NotFound, ParameterError
    from treadle.embedded import EmbeddedRunner

    try:
        response = json.loads(data)
    except ValueError as exc:
        fail(f"--data is not JSON: {exc}")
    settings = load_settings()
    if distributed:
        if pack_path:
            fail("--pack-path applies only without --distributed (the services have the packs)")
        _respond_distributed(settings, inquiry_id, response, as_json=as_json, quiet=quiet)
        return
    catalog = load_catalog(settings, pack_path or [])
    with EmbeddedRunner.open(settings, catalog) as runner:
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
    is refused up front (ConflictError), as it is through the database."""
    from treadle.common.statuses import InquiryStatus
    from treadle.scheduler.service.inquiries import unanswerable

    with runner.store.unit_of_work() as uow:
        entry = uow.get_inquiry(inquiry_id)
    overdue = entry.deadline is not None and entry.deadline <= runner.clock()
    pending = entry.status is InquiryStatus.PENDING and not overdue  # else the runner says
    broken = unanswerable(entry) if pending else None
    if broken is not None:
        raise broken
    return runner.respond(inquiry_id, response, login)


def _respond_distributed(
    settings: Any, inquiry_id: str, response: Any, *, as_json: bool, quiet: bool
) -> None:
    """Answer through the database; the run is left to the scheduler and workers."""
    from treadle.client import Client
    from treadle.common.errors import (
        ConfigurationError,
        ConflictError,
        NotFound,
        ParameterError,
        ServiceUnavailable,
    )

    who = identity()
    try:
        with Client(settings=settings, identity=who) as client:
            answered = client.respond(inquiry_id, response, responder=who.get("login"))
            with client.store.snapshot() as uow:
                [entry] = _shown(uow, [uow.get_inquiry(inquiry_id)])
    except NotFound:
        fail(f"no inquiry {inquiry_id}")
    except ParameterError as exc:
        fail("\n  ".join(["the answer does not fit the inquiry's schema:", *exc.problems]))
    except (ConflictError, ConfigurationError) as exc:
        fail(str(exc))
    except ServiceUnavailable as exc:
        fail(str(exc), ExitCode.FAILED)
    if as_json:
        print_json(entry)
    elif not quiet:
        typer.echo(
            f"inquiry {answered.id} answered; run {entry['run']} goes on with the services "
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
