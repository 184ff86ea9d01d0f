"""``treadle webhooks create|list|delete``: the webhooks outside systems deliver events to.

They act on the database directly (``TREADLE_DATABASE_URL``), like ``treadle tokens``:
whoever may run ``treadle`` there administers Treadle, so these commands act as
``cli:<os login>`` (what the audit log records) in any workspace. A generated secret is
printed once, by ``create``: only its ciphertext is stored (``TREADLE_SECRET_KEY``), so it
cannot be shown again. Webhooks a pack declares are listed too, and cannot be deleted
here: they come back with their pack. See ``docs/api.md`` for deliveries.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from treadle.cli.support import command_database, fail, identity, print_json
from treadle.common.access import DEFAULT_WORKSPACE

webhooks_app = typer.Typer(
    help="Webhooks for the HTTP API: create, list, delete.", no_args_is_help=True
)

_NOT_SHOWN_AGAIN = (
    "Store this secret now: it cannot be shown again (the database keeps it encrypted)."
)


def register(app: typer.Typer) -> None:
    app.add_typer(webhooks_app, name="webhooks")


@webhooks_app.command("create")
def create_webhook(
    name: Annotated[str, typer.Option("--name", help="The last part of its URL (unique).")],
    event_type: Annotated[
        str, typer.Option("--event-type", help="The type of the event each delivery becomes.")
    ],
    workspace: Annotated[
        str, typer.Option("--workspace", help="The workspace its events and runs belong to.")
    ] = DEFAULT_WORKSPACE,
    secret_from_stdin: Annotated[
        bool,
        typer.Option(
            "--secret-stdin",
            help="Read the shared secret from stdin (default: generate one and print it).",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="The new webhook as JSON.")] = False,
) -> None:
    """Create a webhook; without --secret-stdin a secret is generated and printed, once."""
    from treadle.clientlib.audit import Change, audited, database_principal
    from treadle.common.errors import ConflictError, ParameterError
    from treadle.scheduler.service import webhooks
    from treadle.scheduler.store.base import utc_now

    if not workspace.strip():
        fail("--workspace must not be empty")
    secret = typer.get_text_stream("stdin").read().strip() if secret_from_stdin else None
    principal = database_principal(identity())
    details = {"event_type": event_type, "generated_secret": secret is None}
    change = Change("webhook.create", name, details)
    with command_database(False) as store:
        try:
            with audited(store.unit_of_work, principal, change, clock=utc_now) as uow:
                entry, generated = webhooks.create(
                    uow,
                    name=name,
                    event_type=event_type,
                    secret=secret,
                    workspace=workspace,
                    created_by=principal.actor,
                    now=utc_now(),
                )
        except ParameterError as exc:
            fail("; ".join(exc.problems))
        except ConflictError as exc:
            fail(str(exc))
    if as_json:
        print_json({**webhooks.shown(entry), "secret": generated})
    else:
        typer.echo(
            f"created webhook {name!r} (workspace {workspace}): deliveries to "
            f"/api/v1/webhooks/{name} become {event_type!r} events",
            err=True,
        )
        if generated is not None:
            typer.echo(generated)
    if generated is not None:
        typer.echo(_NOT_SHOWN_AGAIN, err=True)


@webhooks_app.command("list")
def list_webhooks(
    workspace: Annotated[
        str | None,
        typer.Option("--workspace", help="Only this workspace's webhooks (default: all)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The webhooks as JSON.")] = False,
) -> None:
    """Every webhook, those packs declare included (never a secret)."""
    from treadle.scheduler.service import webhooks

    with command_database(False) as store, store.snapshot() as uow:
        entries = [webhooks.shown(entry) for entry in uow.list_webhooks(workspace)]
    if as_json:
        print_json(entries)
        return
    if not entries:
        typer.echo("no webhooks", err=True)
        return
    columns = ("name", "workspace", "event type", "source", "created")
    rows = [columns, *(_row(entry) for entry in entries)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        typer.echo("  ".join(cells).rstrip())


@webhooks_app.command("delete")
def delete_webhook(name: Annotated[str, typer.Argument(help="The webhook's name.")]) -> None:
    """Delete a webhook: deliveries to it are refused from now on."""
    from treadle.clientlib.audit import Change, audited, database_principal
    from treadle.common.errors import ConflictError, NotFound
    from treadle.scheduler.service import webhooks
    from treadle.scheduler.store.base import utc_now

    principal = database_principal(identity())
    with command_database(False) as store:
        try:
            change = Change("webhook.delete", name)
            with audited(store.unit_of_work, principal, change, clock=utc_now) as uow:
                entry = webhooks.remove(uow, name, workspace=None)
        except (NotFound, ConflictError) as exc:
            fail(str(exc))
    typer.echo(f"deleted webhook {name!r} (workspace {entry.workspace})")


def _row(entry: dict[str, Any]) -> tuple[str, ...]:
    source = f"pack {entry['pack']}" if entry["pack"] else "api"
    return (
        entry["name"],
        entry["workspace"],
        entry["event_type"],
        source,
        entry["created_at"] or "",
    )
