"""``treadle runs why ID``: what each unfinished task of a run waits for, in plain words.

Reads the run document (from the database, or through the API with ``--api``) and prints
its ``why`` entries, one line per task (or group of items): ``work (3 items): queued on
'treadle.tasks' for 2 min: no worker has taken it yet; nothing consumes 'treadle.tasks'``.
An ended run says so. See ``docs/operations.md``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any

import typer

from treadle.cli.clients import ApiOption, TokenOption
from treadle.cli.support import fail, print_json


def register(runs_app: typer.Typer) -> None:
    runs_app.command("why")(why_run)


def why_lines(document: Mapping[str, Any]) -> list[str]:
    """The lines ``runs why`` prints for a run document."""
    status = document.get("status")
    reasons: Sequence[Mapping[str, Any]] = document.get("why") or []
    if "why" not in document:
        return [f"run {document.get('id')} is {status}: nothing waits"]
    if not reasons:
        return [f"run {document.get('id')} is {status}; no task is waiting"]
    lines = [f"run {document.get('id')} is {status}:"]
    for reason in reasons:
        count = reason.get("count") or 1
        who = str(reason.get("task") or "the run")  # a run-level reason (its budget)
        if count > 1:
            who += f" ({count} items)"
        message = str(reason.get("message"))
        if count > 1 and message.startswith(f"{count} items: "):
            message = message[len(f"{count} items: ") :]
        lines.append(f"  {who}: {message}")
    return lines


def why_run(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="The reasons as JSON (the document's `why`).")
    ] = False,
    api: ApiOption = None,
    token: TokenOption = None,
) -> None:
    """Why a run does not move: what each task that has not ended waits for."""
    from treadle.cli.clients import command_client, upgrade_database
    from treadle.common.errors import NotFound

    with command_client(api, token, prepare=upgrade_database) as client:
        try:
            document = client.get_document(run_id)
        except NotFound:
            fail(f"no run {run_id}")
    if as_json:
        print_json(document.get("why", []))
        return
    typer.echo("\n".join(why_lines(document)))
