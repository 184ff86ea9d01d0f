"""``treadle events send|list|waits``: outside events into runs, and what runs wait for.

``send`` records an event, starts the runs it triggers and releases the waits it matches
(see :mod:`treadle.scheduler.service.events`). Embedded by default: the loaded packs'
workflows with an event trigger are published first (as ``treadle scheduler`` does at
start-up), and the runs the event touched are carried on in this process until they end
or wait again. With ``--distributed`` the event is written to ``TREADLE_DATABASE_URL``
through :class:`treadle.Client` and the services carry on; nothing runs here. With ``--api
URL`` (or ``TREADLE_API_URL``) it is sent through the HTTP API instead, as distributed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from treadle.cli.clients import ApiOption, TokenOption
from treadle.cli.support import (
    command_database,
    fail,
    identity,
    load_catalog,
    load_settings,
    print_json,
)

if TYPE_CHECKING:
    from treadle.common.settings import Settings
    from treadle.embedded import EmbeddedRunner
    from treadle.scheduler.service.event_outcome import EventOutcome

events_app = typer.Typer(
    help="Send outside events to runs; list events and waits; the lifecycle events sent.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(events_app, name="events")


def _data(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError as exc:
        fail(f"--data is not JSON: {exc}")


@events_app.command("send")
def send(
    event_type: Annotated[str, typer.Argument(metavar="TYPE", help="The event type.")],
    subject: Annotated[
        str | None, typer.Option("--subject", help="What the event is about.")
    ] = None,
    data: Annotated[str | None, typer.Option("--data", help="The event's data, as JSON.")] = None,
    event_id: Annotated[
        str | None,
        typer.Option("--id", help="The event's id; the same id again is a duplicate."),
    ] = None,
    distributed: Annotated[
        bool,
        typer.Option(
            "--distributed",
            help="Write the event to TREADLE_DATABASE_URL for the services to act on; "
            "run nothing here.",
        ),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json/--text", help="The outcome as JSON (default) or text.")
    ] = True,
    pack_path: Annotated[
        list[Path] | None, typer.Option("--pack-path", help="Another folder of packs.")
    ] = None,
    api: ApiOption = None,
    token: TokenOption = None,
) -> None:
    """Send an event: start the runs it triggers and release the waits it matches."""
    from treadle.cli.clients import api_url

    value = _data(data)
    if distributed or api_url(api):
        if pack_path:
            fail(
                "--pack-path applies only without --distributed or --api "
                "(the scheduler has the packs)"
            )
        outcome = _send_distributed(api, token, event_type, subject, value, event_id)
    else:
        settings = load_settings()
        outcome = _send_embedded(settings, pack_path or [], event_type, subject, value, event_id)
    _print_outcome(outcome, as_json=as_json)


def _send_distributed(
    api: str | None,
    token: str | None,
    event_type: str,
    subject: str | None,
    data: Any,
    event_id: str | None,
) -> EventOutcome:
    """Send through the database, or the API; the services act on it."""
    from treadle.cli.clients import command_client
    from treadle.common.errors import LimitExceeded, ParameterError

    with command_client(api, token) as client:
        try:
            return client.send_event(event_type, subject=subject, data=data, event_id=event_id)
        except (ParameterError, LimitExceeded) as exc:
            fail(str(exc))


def _send_embedded(
    settings: Settings,
    pack_paths: list[Path],
    event_type: str,
    subject: str | None,
    data: Any,
    event_id: str | None,
) -> EventOutcome:
    from treadle.clientlib.audit import database_principal
    from treadle.clientlib.changes import send_event
    from treadle.common.errors import LimitExceeded, ParameterError
    from treadle.common.heap import freeze_start_up
    from treadle.embedded import EmbeddedRunner
    from treadle.scheduler.service.events import EventRouter

    catalog = load_catalog(settings, pack_paths)
    with EmbeddedRunner.open(settings, catalog) as runner:
        freeze_start_up()  # this process's start-up is done: common/heap.py
        _publish_triggered(runner)
        router = EventRouter(runner.starter, identity=identity())
        by = runner.auditor(database_principal(identity()))  # event.send by cli:<login>
        try:
            outcome = send_event(
                by, router, event_type, subject=subject, data=data, event_id=event_id
            )
        except (ParameterError, LimitExceeded) as exc:
            fail(str(exc))
        touched = [*outcome.started_runs, *outcome.updated_runs]
        if touched:
            _carry_on(runner, touched)
    return outcome


def _publish_triggered(runner: EmbeddedRunner) -> None:
    """Publish the loaded workflows that have an event trigger (unchanged ones keep their
    version), so triggers in packs work without registering them first."""
    from treadle.common.errors import ConflictError, DefinitionError

    author = identity().get("login")
    for ref, spec in sorted(runner.catalog.workflows.items()):
        if spec.trigger is None or spec.trigger.type != "event":
            continue
        try:
            runner.definitions.publish(spec, at=runner.clock(), author=author)
        except (DefinitionError, ConflictError) as exc:
            typer.echo(f"warning: {ref} is not published: {str(exc).splitlines()[0]}", err=True)


def _carry_on(runner: EmbeddedRunner, run_ids: list[str]) -> None:
    """Drive the touched runs (from their top-level runs) until they end or wait again."""
    roots: list[str] = []
    for run_id in run_ids:
        state = runner.runs.load(run_id)
        while state.context.parent_run_id is not None:
            state = runner.runs.load(state.context.parent_run_id)
        if state.run_id not in roots:
            roots.append(state.run_id)
    followed = runner.follow_all(roots)
    for run_id, result in followed.items():
        status = result.state.status.value
        suffix = " (waiting)" if result.waiting else ""
        typer.echo(f"run {run_id} {status}{suffix}", err=True)


def _print_outcome(outcome: EventOutcome, *, as_json: bool) -> None:
    if as_json:
        print_json(outcome.as_json())
        return
    if outcome.duplicate:
        typer.echo(f"event {outcome.event_id} is a duplicate: nothing happened")
        return
    typer.echo(f"event {outcome.event_id} recorded")
    for run_id in outcome.started_runs:
        typer.echo(f"  started run {run_id}")
    for run_id in outcome.updated_runs:
        typer.echo(f"  updated run {run_id}")
    for workflow, reason in outcome.refused.items():
        typer.echo(f"  did not start {workflow}: {reason}")


@events_app.command("list")
def list_events(
    event_type: Annotated[
        str | None, typer.Option("--type", help="Only this type (a pattern: 'mail.*').")
    ] = None,
    subject: Annotated[str | None, typer.Option("--subject", help="Only this subject.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 50,
    distributed: Annotated[
        bool, typer.Option("--distributed", help="Read TREADLE_DATABASE_URL as a client.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The events received, newest first, with the runs their triggers started."""
    from treadle.scheduler.core.namespaces import iso

    with command_database(distributed) as store, store.unit_of_work() as uow:
        entries = uow.list_received_events(event_type=event_type, subject=subject, limit=limit)
        started = uow.runs_started_by([e.id for e in entries])
    rows = [
        {
            "id": e.id,
            "type": e.type,
            "subject": e.subject,
            "data": e.data,
            "received_at": iso(e.received_at),
            "started_runs": started.get(e.id, []),
        }
        for e in entries
    ]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        about = f"  {row['subject']}" if row["subject"] is not None else ""
        data = json.dumps(row["data"], ensure_ascii=False)
        runs = f"  started {', '.join(row['started_runs'])}" if row["started_runs"] else ""
        typer.echo(f"{row['received_at']}  {row['id']}  {row['type']}{about}  {data}{runs}")


@events_app.command("waits")
def list_waits(
    run: Annotated[str | None, typer.Option(help="Only this run's waits.")] = None,
    distributed: Annotated[
        bool, typer.Option("--distributed", help="Read TREADLE_DATABASE_URL as a client.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """What runs wait for now: event type and subject patterns, and deadlines."""
    from treadle.scheduler.core.namespaces import iso

    with command_database(distributed) as store, store.unit_of_work() as uow:
        waits = uow.list_event_waits(run_id=run)
    rows = [
        {
            "wait": w.wait_id,
            "run": w.run_id,
            "type": w.event_type,
            "subject": w.subject,
            "deadline": iso(w.deadline),
            "since": iso(w.created_at),
        }
        for w in waits
    ]
    if as_json:
        print_json(rows)
        return
    for row in rows:
        about = f" subject {row['subject']}" if row["subject"] is not None else ""
        until = f" until {row['deadline']}" if row["deadline"] else ""
        typer.echo(f"run {row['run']} waits for {row['type']}{about}{until}")
