"""``treadle runs purge --older-than 30d``: remove ended runs and every row stored for them.

Retention by hand (the scheduler does the same periodically with
``TREADLE_RETENTION_DAYS``): whole run trees whose runs all ended before the cutoff go, in
batches of one transaction each, then old outside events no remaining run references.
``--dry-run`` counts what would go and changes nothing. A purge that removed something is
recorded in the audit log as ``run.purge`` by ``cli:<login>`` (the cutoff, and how many
runs and events went), in a transaction of its own once it ends. Registered on the
``runs`` group from its own module (``docs/cli.md``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from treadle.cli.support import command_database, fail, identity, print_json

if TYPE_CHECKING:
    from datetime import timedelta

    from treadle.common.statuses import RunStatus
    from treadle.scheduler.service.retention import PurgeReport, PurgeRequest


def register(app: typer.Typer) -> None:
    from treadle.cli.runs_cmd import runs_app

    runs_app.command("purge")(purge_runs)


def purge_runs(
    older_than: Annotated[
        str,
        typer.Option(
            "--older-than",
            help="Remove runs that ended longer ago than this: 30d, 12h, 90m.",
            show_default=False,
        ),
    ],
    status: Annotated[
        list[str] | None,
        typer.Option(
            "--status",
            help="Only top-level runs with this ended status (repeatable); their child "
            "runs go with them. Default: every ended status.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Count what would be removed; change nothing.")
    ] = False,
    batch_size: Annotated[
        int, typer.Option("--batch-size", min=1, max=10_000, help="Runs per transaction.")
    ] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON.")] = False,
) -> None:
    """Remove runs that ended before a cutoff, with everything stored for them."""
    from treadle.scheduler.service.retention import PurgeRequest, purge
    from treadle.scheduler.store.base import utc_now

    age = _age(older_than)
    statuses = _statuses(status or [])
    request = PurgeRequest(utc_now() - age, statuses, batch_size=batch_size, dry_run=dry_run)
    with command_database(False) as store:
        report = purge(store, request)
        if not dry_run and (report.runs or report.events):
            _audit(store, request, report)
    if as_json:
        print_json(_document(request, report))
        return
    typer.echo(_summary(request, report))


def _audit(store: Any, request: PurgeRequest, report: PurgeReport) -> None:
    """Record what the purge removed (``run.purge``), as ``cli:<login>``."""
    from treadle.clientlib.audit import Auditor, Change, database_principal
    from treadle.scheduler.core.namespaces import iso
    from treadle.scheduler.store.base import utc_now

    details = {
        "cutoff": iso(request.cutoff),
        "statuses": sorted(status.value for status in request.statuses),
        "runs": len(report.runs),
        "events": report.events,
    }
    by = Auditor(store.unit_of_work, database_principal(identity()), utc_now)
    with by.audited(Change("run.purge", None, details)):
        pass


def _age(text: str) -> timedelta:
    from treadle.common.loader.durations import DurationError, parse_duration

    if text.strip().replace(".", "", 1).isdigit():
        fail(f"--older-than {text!r}: give a unit, for example 30d, 12h or 90m")
    try:
        return parse_duration(text)
    except DurationError as exc:
        fail(f"--older-than {text!r}: {exc}")


def _statuses(names: list[str]) -> frozenset[RunStatus]:
    from treadle.common.statuses import RUN_TERMINAL, RunStatus

    ended = ", ".join(sorted(s.value for s in RUN_TERMINAL))
    if not names:
        return RUN_TERMINAL
    chosen: set[RunStatus] = set()
    for name in names:
        try:
            value = RunStatus(name)
        except ValueError:
            fail(f"--status {name!r} is not a run status; an ended one: {ended}")
        if value not in RUN_TERMINAL:
            fail(f"--status {name}: only ended runs are purged; one of {ended}")
        chosen.add(value)
    return frozenset(chosen)


def _document(request: PurgeRequest, report: PurgeReport) -> dict[str, object]:
    from treadle.scheduler.core.namespaces import iso

    return {
        "dry_run": request.dry_run,
        "cutoff": iso(request.cutoff),
        "statuses": sorted(s.value for s in request.statuses),
        "runs": report.runs,
        "rows": dict(sorted(report.rows.items())),
        "events": report.events,
        "skipped": report.skipped,
    }


def _summary(request: PurgeRequest, report: PurgeReport) -> str:
    from treadle.scheduler.core.namespaces import iso

    verb = "would remove" if request.dry_run else "removed"
    rows = ", ".join(f"{table} {count}" for table, count in sorted(report.rows.items()))
    lines = [
        f"{verb} {len(report.runs)} run(s) ended before {iso(request.cutoff)}"
        + (f" ({rows})" if rows else ""),
        f"{verb} {report.events} outside event(s) no remaining run references",
    ]
    if report.skipped:
        lines.append(
            f"left {report.skipped} run tree(s) alone: a run of the tree has not ended "
            "(before the cutoff), is held by a scheduler, or has messages to publish"
        )
    return "\n".join(lines)
