"""``treadle golden verify FILE`` and ``treadle golden compare A B``: golden records read
back, with no database and no packs (a record carries its definition).

``verify`` checks the record's signature (``FILE.sig``, ``TREADLE_GOLDEN_KEY``) before
anything else, then replays its events through the engine and names every line and field
the replay does not reproduce. With ``--api URL`` the API does both with its own key (the
machine verifying needs no key) and counts the verdict in its ``/metrics``; the output
is the same. ``compare`` names every difference between two records, timestamps and run
ids set aside. Exit codes: 0 verified / the same, 1 a bad signature or a difference, 2
nothing could be checked (no key, unreadable or malformed file).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import typer

from treadle.cli.clients import ApiOption, TokenOption
from treadle.cli.support import ExitCode, fail

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
    api: ApiOption = None,
    token: TokenOption = None,
) -> None:
    """Check a golden record's signature, then replay it through the engine."""
    from treadle.cli.clients import api_url
    from treadle.cli.golden_files import golden_keys, read_bytes, read_signature, signature_path
    from treadle.scheduler.service.golden import GoldenFormatError, verify_golden

    data = read_bytes(record)
    url = api_url(api)
    if url:
        _show(_verified_by_api(url, token, record, data, unsigned))
        return
    keys = signature = None
    if not unsigned:
        keys = golden_keys(
            required_for=f"the signature of {record} cannot be checked without it "
            "(--unsigned replays without checking)"
        )
        signature = read_signature(record)
    try:
        verdict = verify_golden(
            data, str(record), keys, signature, signature_name=str(signature_path(record))
        )
    except GoldenFormatError as exc:
        fail(str(exc))
    _show(verdict.as_json())


def _verified_by_api(
    url: str, token: str | None, record: Path, data: bytes, unsigned: bool
) -> dict[str, Any]:
    """The API's verdict on ``record``; a missing signature is told as without --api."""
    from treadle.apiclient import ApiClient
    from treadle.cli.clients import command_client
    from treadle.cli.golden_files import read_signature, signature_path
    from treadle.common.errors import ConflictError, ParameterError
    from treadle.scheduler.service.golden import (
        SignatureCheck,
        SignatureResult,
        Verification,
        VerificationResult,
        signature_problem,
    )

    if unsigned:
        fail("--unsigned does not go through the API, which verifies signed records only")
    signature = read_signature(record)
    if signature is None:
        missing = SignatureCheck(SignatureResult.MISSING)
        problem = signature_problem(missing, str(record), str(signature_path(record)))
        bad = VerificationResult.BAD_SIGNATURE
        return Verification(str(record), bad, f"bad signature: {problem}", (), missing).as_json()
    with command_client(url, token) as client:
        assert isinstance(client, ApiClient)
        try:
            return client.verify_golden(data, _one_line(signature), name=str(record))
        except ParameterError as exc:  # not a golden record
            fail("; ".join(exc.problems))
        except ConflictError as exc:  # no TREADLE_GOLDEN_KEY where the API runs
            fail(str(exc))


def _one_line(signature: str) -> str:
    """The signature as a header can carry it: a character no header value holds (a line
    break, a control character) becomes a tab. Such a signature is no single ``hmac-sha256
    <key id> <hex>`` line, so it is as malformed after as before: the verdict stays."""
    return "".join(c if " " <= c <= "~" else "\t" for c in signature.strip())


def _show(verdict: Mapping[str, Any]) -> None:
    """Print a verdict (``Verification.as_json()``, or the API's); exit 1 unless ``ok``."""
    if verdict["result"] == "bad_signature":
        typer.echo(verdict["message"], err=True)
        raise typer.Exit(int(ExitCode.FAILED))
    for difference in verdict.get("differences", ()):
        typer.echo(difference, err=True)
    typer.echo(verdict["message"])
    if verdict["result"] != "ok":
        raise typer.Exit(int(ExitCode.FAILED))


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
