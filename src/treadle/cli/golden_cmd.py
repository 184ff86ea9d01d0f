"""``treadle golden verify FILE`` and ``treadle golden compare A B``: golden records read
back, with no database and no packs (a record carries its definition).

``verify`` checks the record's signature (``FILE.sig``, ``TREADLE_GOLDEN_KEY``) before
anything else, then replays its events through the engine and names every line and field
the replay does not reproduce. ``compare`` names every difference between two records,
timestamps and run ids set aside. Exit codes: 0 verified / the same, 1 a bad signature or
a difference, 2 nothing could be checked (no key, unreadable or malformed file).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from treadle.cli.support import ExitCode

if TYPE_CHECKING:
    from treadle.scheduler.service.golden import GoldenRecord

golden_app = typer.Typer(
    help="Verify and compare golden records (treadle runs golden writes them).",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(golden_app, name="golden")


@golden_app.command("verify")
def verify(
    record: Annotated[Path, typer.Argument(help="The record (its signature is RECORD.sig).")],
    unsigned: Annotated[
        bool,
        typer.Option(
            "--unsigned", help="Replay without checking a signature (a record written unsigned)."
        ),
    ] = False,
) -> None:
    """Check a golden record's signature, then replay it through the engine."""
    from treadle.cli.golden_files import check_signature, golden_keys, parse_record, read_bytes

    data = read_bytes(record)
    signed = ""
    if not unsigned:
        keys = golden_keys(
            required_for=f"the signature of {record} cannot be checked without it "
            "(--unsigned replays without checking)"
        )
        check = check_signature(record, data, keys)
        signed = f"signature ok (key {check.key_id}); "
    parsed = parse_record(record, data)
    problems = _replayed(parsed)
    for problem in problems:
        typer.echo(problem, err=True)
    if problems:
        typer.echo(f"mismatch: {len(problems)} difference(s) between {record} and its replay")
        raise typer.Exit(int(ExitCode.FAILED))
    events = sum(1 for _ in parsed.of_kind("event"))
    steps = sum(1 for _ in parsed.of_kind("step"))
    typer.echo(
        f"verified: {signed}{events} events replay to the recorded decisions; "
        f"{steps} steps and the run's end match"
    )


@golden_app.command("compare")
def compare(
    first: Annotated[Path, typer.Argument(help="A golden record.")],
    second: Annotated[Path, typer.Argument(help="Another golden record.")],
) -> None:
    """Compare two golden records, ignoring timestamps, run ids and secret tags."""
    from treadle.cli.golden_files import parse_record, read_bytes
    from treadle.scheduler.service.golden import compare_records

    a = parse_record(first, read_bytes(first))
    b = parse_record(second, read_bytes(second))
    differences = compare_records(a, b)
    for difference in differences:
        typer.echo(difference)
    if differences:
        typer.echo(f"{len(differences)} difference(s)", err=True)
        raise typer.Exit(int(ExitCode.FAILED))
    typer.echo(f"same: {first} and {second} record the same run (timestamps and run ids aside)")


def _replayed(record: GoldenRecord) -> list[str]:
    from treadle.cli.support import fail
    from treadle.scheduler.service.golden import GoldenFormatError, replay_record

    try:
        return replay_record(record)
    except GoldenFormatError as exc:
        fail(str(exc))
