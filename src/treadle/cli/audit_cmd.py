"""``treadle audit list``: read the audit log, newest first, a page at a time.

The audit log records who did what (``token.create``, ``run.start``, ...) and how it
ended; the database keeps it append-only and the retention purge never removes it (see
``docs/security.md``). This command only reads it, from ``TREADLE_DATABASE_URL``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from treadle.cli.support import command_database, fail, print_json

if TYPE_CHECKING:
    from treadle.scheduler.store import AuditRecord

audit_app = typer.Typer(help="Read the audit log.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(audit_app, name="audit")


@audit_app.command("list")
def list_audit(
    workspace: Annotated[
        str | None, typer.Option("--workspace", help="Only this workspace (default: all).")
    ] = None,
    actor: Annotated[
        str | None, typer.Option("--actor", help="Only this actor, e.g. token:ci or cli:ada.")
    ] = None,
    action: Annotated[
        str | None, typer.Option("--action", help="Only this action, e.g. token.create.")
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            help="Only entries at or after this ISO time (UTC unless it says otherwise), or "
            "this long ago (24h, 7d).",
        ),
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 50,
    cursor: Annotated[
        int | None,
        typer.Option("--cursor", help="The page after the previous one: the cursor it printed."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The entries as JSON.")] = False,
) -> None:
    """The newest audit entries: id, time, actor, workspace, action, target, outcome.

    When more entries match, the last line on stderr is `next page: --cursor N`; pass it
    (with the same filters) for the older entries.
    """
    now = datetime.now(UTC)
    start = _since(since, now) if since is not None else None
    filters: dict[str, Any] = {
        "workspace": workspace,
        "actor": actor,
        "action": action,
        "since": start,
    }
    with command_database(False) as store, store.snapshot() as uow:
        records = uow.list_audit(**filters, after_id=cursor, limit=limit)
        more = bool(records) and bool(uow.list_audit(**filters, after_id=records[-1].id, limit=1))
    if as_json:
        print_json([_document(record) for record in records])
    else:
        for record in records:
            typer.echo(_line(record))
        if not records:
            typer.echo("no audit entries match", err=True)
    if more:
        typer.echo(f"next page: --cursor {records[-1].id}", err=True)


def _since(text: str, now: datetime) -> datetime:
    """``--since``: an ISO time, or a duration meaning that long before ``now``."""
    from treadle.common.loader.durations import DurationError, parse_duration

    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        pass
    else:
        return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    if text.strip().replace(".", "", 1).isdigit():
        fail(f"--since {text!r}: give a unit, for example 24h or 7d, or an ISO time")
    try:
        return now - parse_duration(text)
    except DurationError:
        fail(
            f"--since {text!r}: expected an ISO time such as 2027-01-31T12:00:00Z or a "
            "duration such as 24h or 7d"
        )


def _document(record: AuditRecord) -> dict[str, Any]:
    from treadle.scheduler.core.namespaces import iso

    return {
        "id": record.id,
        "at": iso(record.at),
        "actor": record.actor,
        "workspace": record.workspace,
        "action": record.action,
        "target": record.target,
        "outcome": record.outcome.value,
        "details": record.details,
    }


def _line(record: AuditRecord) -> str:
    import json

    from treadle.scheduler.core.namespaces import iso

    line = (
        f"{record.id}  {iso(record.at)}  {record.actor}  {record.workspace}  "
        f"{record.action}  {record.target or '-'}  {record.outcome.value}"
    )
    if record.details:
        line += "  " + json.dumps(record.details, ensure_ascii=False, sort_keys=True)
    return line
