"""``treadle runs render ID --format workflows-v1|aos`` and ``treadle runs golden ID``.

Both read the run from TREADLE_DATABASE_URL with the definition version it is pinned to
and its event log (no packs needed), and print JSON:

* ``render``: the run in the workflows/v1 run shape (``{"run": {...}}``) or the AOS
  execution-result shape; with ``--events``, the run's workflows/v1 lifecycle events;
* ``golden``: the run's golden record; with ``--verify FILE``, replay a golden record's
  events through the engine against its pinned definition and report any decision that
  differs (exit 1), or ``verified`` (exit 0).

These commands add to the ``runs`` group from their own module (see ``docs/dialects.md``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from treadle.cli.support import ExitCode, fail, load_settings, print_json

FORMATS = ("workflows-v1", "aos")


def register(app: typer.Typer) -> None:
    from treadle.cli.runs_cmd import runs_app

    runs_app.command("render")(render_run)
    runs_app.command("golden")(golden_run)


def render_run(
    run_id: Annotated[str, typer.Argument(help="The run's id.", show_default=False)],
    format_: Annotated[
        str, typer.Option("--format", help="workflows-v1 or aos.", show_default=False)
    ],
    events: Annotated[
        bool, typer.Option("--events", help="The lifecycle events instead (workflows-v1).")
    ] = False,
) -> None:
    """Print a run in the shape of another dialect (JSON)."""
    from treadle.scheduler.service.renderings import aos_run, v1_lifecycle_events, v1_run

    if format_ not in FORMATS:
        fail(f"unknown format {format_!r}: use {' or '.join(FORMATS)}")
    if events and format_ != "workflows-v1":
        fail("--events is only for --format workflows-v1")
    run = _load(run_id)
    if format_ == "aos":
        print_json(aos_run(run))
    elif events:
        print_json(v1_lifecycle_events(run))
    else:
        print_json(v1_run(run))


def golden_run(
    run_id: Annotated[str, typer.Argument(help="The run's id.", show_default=False)],
    verify: Annotated[
        Path | None,
        typer.Option(help="Check this golden record by replaying it instead.", show_default=False),
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the record here.")
    ] = None,
) -> None:
    """Print the golden record of a run, or verify one by replaying it."""
    from treadle.scheduler.service.renderings import golden_record, verify_golden

    run = _load(run_id)
    if verify is None:
        record = golden_record(run)
        if output is None:
            print_json(record)
        else:
            output.write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", "utf-8")
        return
    try:
        given: Any = json.loads(verify.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        fail(f"cannot read the golden record {verify}: {exc}")
    if not isinstance(given, dict) or "events" not in given:
        fail(f"{verify} is not a golden record (no 'events')")
    problems = verify_golden(given, run.pinned.graph)
    for problem in problems:
        typer.echo(problem, err=True)
    if problems:
        raise typer.Exit(int(ExitCode.FAILED))
    typer.echo(f"verified: {len(given['events'])} events replay to the recorded decisions")


def _load(run_id: str) -> Any:
    from treadle.common.errors import NotFound
    from treadle.scheduler.service.renderings import load_stored_run
    from treadle.scheduler.store import Store

    store = Store.open(load_settings().database_url)
    try:
        return load_stored_run(store, run_id)
    except NotFound:
        fail(f"no run {run_id}")
    finally:
        store.close()
