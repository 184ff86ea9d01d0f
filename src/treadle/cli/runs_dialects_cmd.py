"""``treadle runs render ID --format workflows-v1|aos`` and ``treadle runs golden ID``.

Both read the run from TREADLE_DATABASE_URL with the definition version it is pinned to
and its event log (no packs needed):

* ``render``: the run in the workflows/v1 run shape (``{"run": {...}}``) or the AOS
  execution-result shape; with ``--events``, the run's workflows/v1 lifecycle events;
* ``golden ID --out FILE``: write the run's golden record (JSON lines) and its signature
  ``FILE.sig`` (``TREADLE_GOLDEN_KEY``; ``--unsigned`` writes no signature). ``treadle
  golden verify|compare`` read records (``golden_cmd.py``).

These commands add to the ``runs`` group from their own module (see ``docs/dialects.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from treadle.cli.support import fail, load_settings, print_json

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
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Write the record here (and its signature to FILE.sig)."),
    ],
    unsigned: Annotated[
        bool, typer.Option("--unsigned", help="Write no signature (no TREADLE_GOLDEN_KEY).")
    ] = False,
) -> None:
    """Write the golden record of a run (JSON lines) and its HMAC signature."""
    from treadle.cli.golden_files import golden_keys, write_record
    from treadle.scheduler.service.golden import golden_lines

    keys = None
    if not unsigned:
        keys = golden_keys(
            required_for="a golden record is signed with it (set it, or pass --unsigned "
            "to write the record without a signature)"
        )
    lines = golden_lines(_load(run_id))
    typer.echo(write_record(out, lines, keys), err=True)


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
