"""``treadle events lifecycle|deliveries|redeliver|publish``: the lifecycle events Treadle
pushes out (``docs/lifecycle-events.md``), next to the outside events ``events_cmd.py``
takes in.

``lifecycle`` lists the stored CloudEvents (of one run); ``deliveries`` lists their
deliveries to the webhook sinks (``--failed``: those kept as failed after their last
attempt), naming each sink and never showing its URL or secret; ``redeliver ID`` makes a
delivery due again with fresh attempts, for the schedulers to post (recorded in the audit
log as ``cli:<login>``); ``publish`` runs one pass of publishing and delivering in this
process, for a database no scheduler publishes from (embedded mode on SQLite).
"""

from __future__ import annotations

from typing import Annotated

import typer

from treadle.cli.events_cmd import events_app
from treadle.cli.support import command_database, fail, identity, load_settings, print_json

__all__ = ["register"]

_STATUSES = ("pending", "delivered", "failed")


def register(app: typer.Typer) -> None:
    """The commands join ``treadle events`` (registered by ``events_cmd``)."""


@events_app.command("lifecycle")
def list_lifecycle_events(
    run: Annotated[str | None, typer.Option("--run", help="Only this run's events.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, oldest first.")] = 100,
    distributed: Annotated[
        bool, typer.Option("--distributed", help="Read TREADLE_DATABASE_URL as a client.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The lifecycle events written (TREADLE_LIFECYCLE_EVENTS), in the order written."""
    from treadle.scheduler.service.lifecycle_events.views import event_view

    with command_database(distributed) as store, store.snapshot() as uow:
        shown = [event_view(e) for e in uow.list_lifecycle_events(run_id=run, limit=limit)]
    if as_json:
        print_json(shown)
        return
    for row in shown:
        event = row["cloudevent"]
        published = f"published {row['published_at']}" if row["published_at"] else "unpublished"
        typer.echo(
            f"{event['time']}  {event['type']}  {event['subject']}  {event['id']}  {published}"
        )


@events_app.command("deliveries")
def list_deliveries(
    failed: Annotated[
        bool, typer.Option("--failed", help="Only those kept as failed after the last attempt.")
    ] = False,
    status: Annotated[
        str | None, typer.Option("--status", help="Only this status: pending, delivered, failed.")
    ] = None,
    run: Annotated[str | None, typer.Option("--run", help="Only this run's deliveries.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 50,
    distributed: Annotated[
        bool, typer.Option("--distributed", help="Read TREADLE_DATABASE_URL as a client.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Deliveries of lifecycle events to the webhook sinks, newest first."""
    from treadle.scheduler.service.lifecycle_events.views import delivery_view
    from treadle.scheduler.store.lifecycle_repo import DeliveryStatus

    if status is not None and status not in _STATUSES:
        fail(f"--status must be one of {', '.join(_STATUSES)}, not {status!r}")
    if failed and status not in (None, "failed"):
        fail("--failed and --status name different statuses")
    wanted = DeliveryStatus.FAILED if failed else None if status is None else DeliveryStatus(status)
    with command_database(distributed) as store, store.snapshot() as uow:
        shown = [
            delivery_view(e) for e in uow.list_deliveries(status=wanted, run_id=run, limit=limit)
        ]
    if as_json:
        print_json(shown)
        return
    if not shown:
        typer.echo("no deliveries", err=True)
        return
    for row in shown:
        error = f"  {row['last_error']}" if row["last_error"] else ""
        typer.echo(
            f"{row['id']}  {row['status']}  sink {row['sink']}  {row['event_type']}  "
            f"{row['event_id']}  attempts {row['attempts']}{error}"
        )


@events_app.command("redeliver")
def redeliver(
    delivery_id: Annotated[int, typer.Argument(metavar="ID", help="The delivery's id.")],
    distributed: Annotated[
        bool, typer.Option("--distributed", help="Write TREADLE_DATABASE_URL as a client.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Deliver an event to its sink again: due now, its attempts counted afresh."""
    from treadle.clientlib.audit import Change, audited, database_principal
    from treadle.common.errors import NotFound
    from treadle.scheduler.service.lifecycle_events import views
    from treadle.scheduler.store.base import utc_now

    change = Change("lifecycle_delivery.redeliver", str(delivery_id))
    principal = database_principal(identity())
    with command_database(distributed) as store:
        try:
            with audited(store.unit_of_work, principal, change, clock=utc_now) as uow:
                shown = views.redeliver(uow, delivery_id, utc_now())
        except NotFound as exc:
            fail(str(exc))
    if as_json:
        print_json(shown)
        return
    typer.echo(
        f"delivery {delivery_id} of {shown['event_id']} to sink {shown['sink']} is due again; "
        "a scheduler posts it (or `treadle events publish`)"
    )


@events_app.command("publish")
def publish_once(
    no_exchange: Annotated[
        bool, typer.Option("--no-exchange", help="Deliver to the sinks only, not the broker.")
    ] = False,
) -> None:
    """Publish the unpublished lifecycle events and post the due deliveries, once."""
    from treadle.scheduler.service.celery_publisher import make_celery_app
    from treadle.scheduler.service.lifecycle_events.publishing_thread import pump_for
    from treadle.scheduler.store.base import utc_now

    settings = load_settings()
    app = None if no_exchange or not settings.lifecycle_exchange else make_celery_app(settings)
    with command_database(False) as store:
        pump = pump_for(settings, store, app, utc_now)
        try:
            published = pump.publish_pending()
            delivered = pump.deliver_due()
        except Exception as exc:
            fail(f"publishing lifecycle events failed: {type(exc).__name__}: {exc}")
        finally:
            pump.close()
            if app is not None:
                app.close()
    typer.echo(f"published {published} lifecycle event(s); tried {delivered} delivery(ies)")
