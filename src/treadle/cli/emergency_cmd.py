"""``treadle emergency-stop on|off|status``: halt every run (or one workspace's), and let go.

They act on the database directly (``TREADLE_DATABASE_URL``), as ``treadle schedules``
does: whoever may run ``treadle`` there administers Treadle, and each change is recorded
in the audit log as ``cli:<os login>`` (``emergency_stop.on``, ``emergency_stop.off``).
The schedulers see a change at once (PostgreSQL ``NOTIFY``) and enforce it; what a stop
does: docs/governance.md#emergency-stop.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from treadle.cli.admin_change import audited_change, print_table
from treadle.cli.support import command_database, print_json

emergency_app = typer.Typer(
    help="The emergency stop: halt every run (or one workspace's) at once, and let go.",
    no_args_is_help=True,
)

Workspace = Annotated[
    str | None,
    typer.Option("--workspace", help="Only this workspace's runs (default: every run)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def register(app: typer.Typer) -> None:
    app.add_typer(emergency_app, name="emergency-stop")


def _target(workspace: str | None) -> str:
    return "global" if workspace is None else f"workspace:{workspace}"


@emergency_app.command("on")
def stop_on(
    reason: Annotated[str, typer.Option("--reason", help="Why everything stops (shown).")],
    workspace: Workspace = None,
    terminate: Annotated[
        bool,
        typer.Option(
            "--terminate", help="End running attempts too (they run again after the stop)."
        ),
    ] = False,
    as_json: AsJson = False,
) -> None:
    """Stop: no new dispatch, attempts on the broker taken back, runs paused."""
    from treadle.scheduler.service.emergency_stop.changes import set_stop
    from treadle.scheduler.store.base import utc_now

    details: dict[str, Any] = {"reason": reason, "terminate": terminate}
    with audited_change("emergency_stop.on", _target(workspace), details) as (_store, uow, who):
        stop, new = set_stop(
            uow, workspace, reason=reason, terminate=terminate, by=who.actor, now=utc_now()
        )
        details["new"] = new
    if as_json:
        print_json({**stop.as_json(), "new": new})
        return
    if not new:
        also = "; running attempts are terminated too" if terminate else ""
        typer.echo(f"the {stop.describe()} holds already; kept{also}")
        return
    typer.echo(stop.describe())
    typer.echo(
        "schedulers withhold new dispatches, take back queued attempts and pause the runs"
        + ("; running attempts are terminated" if terminate else "; running attempts finish")
    )
    off = "treadle emergency-stop off" + (f" --workspace {workspace}" if workspace else "")
    typer.echo(f"lift it with: {off}")


@emergency_app.command("off")
def stop_off(
    reason: Annotated[
        str | None, typer.Option("--reason", help="Why it is lifted (shown).")
    ] = None,
    workspace: Workspace = None,
    as_json: AsJson = False,
) -> None:
    """Lift the stop: the runs it paused resume (not those an operator paused)."""
    from treadle.cli.support import load_settings
    from treadle.scheduler.service.emergency_stop.changes import lift
    from treadle.scheduler.store.base import utc_now

    setting = load_settings().emergency_stop
    details = {"reason": reason}
    with audited_change("emergency_stop.off", _target(workspace), details) as (_store, uow, who):
        stop = lift(uow, workspace, by=who.actor, now=utc_now(), reason=reason, setting=setting)
    if as_json:
        print_json(stop.as_json())
        return
    typer.echo(f"emergency stop ({stop.label}) lifted: schedulers resume the runs it paused")


@emergency_app.command("status")
def stop_status(
    everything: Annotated[
        bool, typer.Option("--all", help="Also the stops lifted before (the newest 50).")
    ] = False,
    as_json: AsJson = False,
) -> None:
    """The stops that hold (exit 0 either way)."""
    from treadle.cli.support import load_settings

    setting = load_settings().emergency_stop
    with command_database(False) as store, store.snapshot() as uow:
        stops = uow.emergency_stops(lifted=everything)
    if as_json:
        print_json({"stops": [s.as_json() for s in stops], "setting": setting})
        return
    if setting:
        typer.echo(f"TREADLE_EMERGENCY_STOP is set here: {setting}")
    if not stops:
        typer.echo("no emergency stop holds")
        return
    rows = [("scope", "since", "by", "terminate", "lifted", "reason")]
    for stop in stops:
        shown = stop.as_json()
        lifted = "-" if stop.active else f"{shown['lifted_at']} by {stop.lifted_by}"
        terminate = "yes" if stop.terminate else "no"
        rows.append((stop.label, str(shown["since"]), stop.set_by, terminate, lifted, stop.reason))
    print_table(rows)
