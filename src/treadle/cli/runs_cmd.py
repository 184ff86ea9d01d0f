"""``treadle runs list|show``: read runs from the database the embedded runner writes."""

from __future__ import annotations

from typing import Annotated

import typer

from treadle.cli.support import fail, load_settings, print_json

runs_app = typer.Typer(help="List and inspect runs.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(runs_app, name="runs")


@runs_app.command("list")
def list_runs(
    status: Annotated[str | None, typer.Option(help="Only runs with this status.")] = None,
    workflow: Annotated[str | None, typer.Option(help="Only runs of this workflow ref.")] = None,
    limit: Annotated[int, typer.Option(min=1, help="How many, newest first.")] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The newest runs, one per line: id, status, workflow, created."""
    from treadle.common.statuses import RunStatus
    from treadle.scheduler.core.namespaces import iso
    from treadle.scheduler.store import Store

    try:
        wanted = RunStatus(status) if status else None
    except ValueError:
        fail(f"unknown status {status!r}; one of {', '.join(s.value for s in RunStatus)}")
    store = Store.open(load_settings().database_url)
    try:
        with store.unit_of_work() as uow:
            summaries = uow.list_runs(status=wanted, workflow=workflow, limit=limit)
    finally:
        store.close()
    if as_json:
        print_json(
            [
                {
                    "id": s.id,
                    "workflow": s.workflow,
                    "status": s.status.value,
                    "created_at": iso(s.created_at),
                    "finished_at": iso(s.finished_at),
                    "parent_run": s.parent_run_id,
                }
                for s in summaries
            ]
        )
        return
    for s in summaries:
        typer.echo(f"{s.id}  {s.status.value:<10}  {s.workflow:<40}  {iso(s.created_at)}")


@runs_app.command("show")
def show_run(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="The run document as JSON.")] = True,
) -> None:
    """The run document of one run (JSON)."""
    from treadle.common.errors import NotFound
    from treadle.scheduler.service.run_document import run_document
    from treadle.scheduler.store import Store

    store = Store.open(load_settings().database_url)
    try:
        with store.unit_of_work() as uow:
            try:
                state = uow.load_run(run_id)
            except NotFound:
                fail(f"no run {run_id}")
            inquiries = uow.list_inquiries(run_id=run_id)
    finally:
        store.close()
    print_json(run_document(state, inquiries))
