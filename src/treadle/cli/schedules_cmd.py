"""``treadle schedules create|list|show|pause|resume|delete|trigger-now|backfill|fires``.

They act on the database directly (``TREADLE_DATABASE_URL``), like ``treadle webhooks``:
whoever may run ``treadle`` there administers Treadle, so changes are recorded in the
audit log as ``cli:<os login>``, in any workspace (``--workspace``, default ``default``).
``treadle beat`` sees a change within ``TREADLE_BEAT_RELOAD_SECONDS``. What each field and
policy means: ``docs/schedules.md``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from treadle.cli.admin_change import audited_change, print_table
from treadle.cli.support import (
    ExitCode,
    command_database,
    fail,
    parse_parameters,
    print_json,
)
from treadle.common.access import DEFAULT_WORKSPACE

schedules_app = typer.Typer(
    help="Schedules treadle beat fires: create, list, show, pause, resume, delete, "
    "trigger-now, backfill, fires.",
    no_args_is_help=True,
)

Workspace = Annotated[
    str, typer.Option("--workspace", help="The workspace the schedule belongs to.")
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
NameArg = Annotated[str, typer.Argument(help="The schedule's name.")]


def register(app: typer.Typer) -> None:
    app.add_typer(schedules_app, name="schedules")


def _duration(value: str | None, option: str) -> Any:
    from treadle.common.loader.durations import DurationError, parse_duration

    if value is None:
        return None
    try:
        return parse_duration(value)
    except DurationError as exc:
        fail(f"{option}: {exc}")


def _instant(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option}: {value!r} is not an ISO 8601 time (2026-01-31T17:00:00Z)")
    if parsed.tzinfo is None:
        fail(f"{option}: {value!r} needs a UTC offset or 'Z'")
    return parsed


@schedules_app.command("create")
def create_schedule(
    name: NameArg,
    workflow: Annotated[str, typer.Option("--workflow", help="The workflow ref it starts.")],
    cron: Annotated[
        str | None, typer.Option("--cron", help="5 or 6 fields (seconds first), or @daily...")
    ] = None,
    interval: Annotated[str | None, typer.Option("--interval", help="A duration: 15m.")] = None,
    timezone: Annotated[str, typer.Option("--timezone", help="IANA zone of the cron.")] = "UTC",
    start: Annotated[str | None, typer.Option("--start", help="ISO 8601, with offset.")] = None,
    end: Annotated[str | None, typer.Option("--end", help="ISO 8601, with offset.")] = None,
    jitter: Annotated[str | None, typer.Option("--jitter", help="Up to this delay.")] = None,
    param: Annotated[
        list[str] | None,
        typer.Option("--param", "-p", help="KEY=VALUE; the value is JSON when it parses."),
    ] = None,
    params_file: Annotated[
        Path | None, typer.Option("--params-file", help="A JSON or YAML file of parameters.")
    ] = None,
    overlap: Annotated[
        str,
        typer.Option("--overlap", help="skip | buffer_one | buffer_all | cancel_other | allow_all"),
    ] = "skip",
    catchup_window: Annotated[
        str | None, typer.Option("--catchup-window", help="Default 1d.")
    ] = None,
    missed: Annotated[str, typer.Option("--missed", help="all | last | none")] = "all",
    pause_on_failure: Annotated[
        bool, typer.Option("--pause-on-failure", help="Pause after a failed run.")
    ] = False,
    paused: Annotated[bool, typer.Option("--paused", help="Create it paused.")] = False,
    workspace: Workspace = DEFAULT_WORKSPACE,
    as_json: AsJson = False,
) -> None:
    """Create a schedule that starts WORKFLOW with the given parameters."""
    from treadle.scheduler.service import schedules
    from treadle.scheduler.store.base import utc_now

    given = schedules.ScheduleInput(
        name=name,
        workflow=workflow,
        cron=cron,
        interval=_duration(interval, "--interval"),
        timezone=timezone,
        start=_instant(start, "--start"),
        end=_instant(end, "--end"),
        jitter=_duration(jitter, "--jitter"),
        parameters=parse_parameters(param or [], params_file),
        overlap=overlap,
        catchup_window=_duration(catchup_window, "--catchup-window"),
        missed=missed,
        pause_on_failure=pause_on_failure,
        enabled=not paused,
    )
    with audited_change("schedule.create", name, {"workflow": workflow}) as (_store, uow, who):
        row = schedules.create(uow, given, workspace=workspace, created_by=who.actor, now=utc_now())
    shown = schedules.shown(row, next_fire=schedules.next_fire(row, utc_now()))
    if as_json:
        print_json(shown)
        return
    rule = schedules.rule_of(row).describe()
    typer.echo(f"created schedule {name!r} (workspace {workspace}): {workflow}, {rule}")
    typer.echo(f"next fire: {shown['next_fire'] or 'none'}")


@schedules_app.command("list")
def list_schedules(
    workspace: Annotated[
        str | None, typer.Option("--workspace", help="Only this workspace's (default: all).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Every schedule, with its next fire."""
    from treadle.scheduler.service import schedules
    from treadle.scheduler.store.base import utc_now

    now = utc_now()
    with command_database(False) as store, store.snapshot() as uow:
        rows = uow.list_schedules(workspace)
    items = [schedules.shown(r, next_fire=schedules.next_fire(r, now)) for r in rows]
    if as_json:
        print_json(items)
        return
    if not items:
        typer.echo("no schedules", err=True)
        return
    columns = ("name", "workspace", "workflow", "when", "state", "next fire")
    table = [columns]
    for row, item in zip(rows, items, strict=True):
        state = "enabled" if row.enabled else f"paused ({row.paused_reason or 'paused'})"
        when = schedules.rule_of(row).describe()
        table.append((row.name, row.workspace, row.workflow, when, state, item["next_fire"] or "-"))
    print_table(table)


@schedules_app.command("show")
def show_schedule(
    name: NameArg, workspace: Workspace = DEFAULT_WORKSPACE, as_json: AsJson = False
) -> None:
    """A schedule, its next fire and how many fires of each outcome it recorded."""
    from treadle.common.errors import NotFound
    from treadle.scheduler.service import schedules
    from treadle.scheduler.store.base import utc_now

    with command_database(False) as store, store.snapshot() as uow:
        try:
            row = schedules.find(uow, name, workspace=workspace)
        except NotFound as exc:
            fail(str(exc), ExitCode.FAILED)
        counts = uow.fire_counts(row.id)
    shown = {
        **schedules.shown(row, next_fire=schedules.next_fire(row, utc_now())),
        "fires": counts,
    }
    if as_json:
        print_json(shown)
        return
    for key, value in shown.items():
        typer.echo(f"{key}: {value}")


@schedules_app.command("pause")
def pause_schedule(
    name: NameArg,
    reason: Annotated[str | None, typer.Option("--reason", help="Why (shown).")] = None,
    workspace: Workspace = DEFAULT_WORKSPACE,
) -> None:
    """Pause: fires that come due are recorded as skipped until it is resumed."""
    from treadle.scheduler.service import schedules
    from treadle.scheduler.store.base import utc_now

    with audited_change("schedule.pause", name, {"reason": reason}) as (_store, uow, _who):
        schedules.pause(uow, name, workspace=workspace, now=utc_now(), reason=reason)
    typer.echo(f"paused schedule {name!r}")


@schedules_app.command("resume")
def resume_schedule(name: NameArg, workspace: Workspace = DEFAULT_WORKSPACE) -> None:
    """Resume a paused schedule (fires skipped while paused stay skipped)."""
    from treadle.scheduler.service import schedules
    from treadle.scheduler.store.base import utc_now

    with audited_change("schedule.resume", name) as (_store, uow, _who):
        schedules.resume(uow, name, workspace=workspace, now=utc_now())
    typer.echo(f"resumed schedule {name!r}")


@schedules_app.command("delete")
def delete_schedule(name: NameArg, workspace: Workspace = DEFAULT_WORKSPACE) -> None:
    """Delete a schedule and its fires (its runs stay)."""
    from treadle.scheduler.service import schedules

    with audited_change("schedule.delete", name) as (_store, uow, _who):
        schedules.remove(uow, name, workspace=workspace)
    typer.echo(f"deleted schedule {name!r}")


@schedules_app.command("trigger-now")
def trigger_now(
    name: NameArg, workspace: Workspace = DEFAULT_WORKSPACE, as_json: AsJson = False
) -> None:
    """Fire the schedule now (its overlap policy applies); prints the fire."""
    from treadle.cli.support import load_settings
    from treadle.clientlib.schedules import schedule_firing
    from treadle.clientlib.schedules import trigger_now as fire
    from treadle.scheduler.service.schedules import shown_fire
    from treadle.scheduler.store.base import utc_now

    with audited_change("schedule.trigger", name) as (store, uow, _who):
        firing = schedule_firing(store, load_settings(), clock=utc_now)
        recorded = fire(uow, firing, name, workspace=workspace)
    _print_fires([shown_fire(recorded)], as_json)


@schedules_app.command("backfill")
def backfill(
    name: NameArg,
    start: Annotated[str, typer.Argument(help="From (ISO 8601, inclusive).")],
    end: Annotated[str, typer.Argument(help="To (ISO 8601, inclusive).")],
    overlap: Annotated[
        str, typer.Option("--overlap", help="Overlap policy for these fires.")
    ] = "allow_all",
    workspace: Workspace = DEFAULT_WORKSPACE,
    as_json: AsJson = False,
) -> None:
    """Fire every nominal time of the schedule between FROM and TO now, in order."""
    from treadle.cli.support import load_settings
    from treadle.clientlib.schedules import backfill as fire_between
    from treadle.clientlib.schedules import schedule_firing
    from treadle.common.schedules import OverlapPolicy
    from treadle.scheduler.service.schedules import shown_fire
    from treadle.scheduler.store.base import utc_now

    policies = [p.value for p in OverlapPolicy]
    if overlap not in policies:
        fail(f"--overlap is {overlap!r}; use {' | '.join(policies)}")
    first, last = _instant(start, "FROM"), _instant(end, "TO")
    assert first is not None
    assert last is not None
    details = {"from": first.isoformat(), "to": last.isoformat(), "overlap": overlap}
    with audited_change("schedule.backfill", name, details) as (store, uow, _who):
        firing = schedule_firing(store, load_settings(), clock=utc_now)
        fires = fire_between(
            uow, firing, name, first, last, workspace=workspace, overlap=OverlapPolicy(overlap)
        )
    _print_fires([shown_fire(f) for f in fires], as_json)


@schedules_app.command("fires")
def list_fires(
    name: NameArg,
    limit: Annotated[int, typer.Option("--limit", min=1, max=10_000)] = 50,
    workspace: Workspace = DEFAULT_WORKSPACE,
    as_json: AsJson = False,
) -> None:
    """The schedule's fires, newest first: when, what happened, the run it started."""
    from treadle.common.errors import NotFound
    from treadle.scheduler.service import schedules

    with command_database(False) as store, store.snapshot() as uow:
        try:
            row = schedules.find(uow, name, workspace=workspace)
        except NotFound as exc:
            fail(str(exc), ExitCode.FAILED)
        fires = uow.fires(row.id, limit=limit)
    _print_fires([schedules.shown_fire(f) for f in fires], as_json)


def _print_fires(fires: list[dict[str, Any]], as_json: bool) -> None:
    if as_json:
        print_json(fires)
        return
    if not fires:
        typer.echo("no fires", err=True)
        return
    table = [("nominal time", "kind", "status", "run", "detail")]
    for fire in fires:
        run = fire["run_id"] or "-"
        if fire["run_status"]:
            run += f" ({fire['run_status']})"
        table.append(
            (fire["nominal_time"], fire["kind"], fire["status"], run, fire["reason"] or "")
        )
    print_table(table)
