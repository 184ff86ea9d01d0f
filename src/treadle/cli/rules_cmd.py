"""``treadle rules list|show|enable|disable|matches``: the packs' rules (``docs/rules.md``).

Rules come from the packs' ``rules/`` folders (stored when ``treadle scheduler`` starts or
the packs are reloaded); these commands look at them and switch them on and off, on the
database directly (``TREADLE_DATABASE_URL``) like ``treadle schedules``: changes are in
the audit log as ``cli:<os login>`` (``rule.enable``, ``rule.disable``). NAME is a rule's
ref (``monitoring.health_check``) or its name when no other rule shares it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from treadle.cli.support import command_database, fail, identity, print_json
from treadle.common.access import DEFAULT_WORKSPACE

rules_app = typer.Typer(
    help="Rules from the packs' rules/ folders: list, show, enable, disable, matches.",
    no_args_is_help=True,
)

Workspace = Annotated[str, typer.Option("--workspace", help="The workspace of the rule.")]
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]
NameArg = Annotated[str, typer.Argument(help="The rule's ref (or its name).")]


def register(app: typer.Typer) -> None:
    app.add_typer(rules_app, name="rules")


def _failed() -> Any:
    from treadle.cli.support import ExitCode

    return ExitCode.FAILED


@contextmanager
def _changing(action: str, name: str) -> Iterator[Any]:
    """A transaction recorded in the audit log; a missing rule exits 1, a refusal 2."""
    from treadle.clientlib.audit import Change, audited, database_principal
    from treadle.common.errors import ConflictError, NotFound
    from treadle.scheduler.store.base import utc_now

    principal = database_principal(identity())
    with command_database(False) as store:
        try:
            with audited(store.unit_of_work, principal, Change(action, name), clock=utc_now) as uow:
                yield uow
        except NotFound as exc:
            fail(str(exc), _failed())
        except ConflictError as exc:
            fail(str(exc))


@rules_app.command("list")
def list_rules(
    workspace: Annotated[
        str | None, typer.Option("--workspace", help="Only this workspace's (default: all).")
    ] = None,
    as_json: AsJson = False,
) -> None:
    """Every rule: its trigger, its action, whether it is enabled, its next fire."""
    from treadle.scheduler.service import rules
    from treadle.scheduler.store.base import utc_now

    now = utc_now()
    with command_database(False) as store, store.snapshot() as uow:
        items = [rules.shown(uow, row, now=now) for row in uow.list_rules(workspace)]
    if as_json:
        print_json(items)
        return
    if not items:
        typer.echo("no rules", err=True)
        return
    table = [("ref", "name", "trigger", "action", "state", "next fire")]
    for item in items:
        state = "enabled" if item["enabled"] else "disabled"
        if item["note"]:
            state += " (see note)"
        table.append(
            (
                item["ref"],
                item["name"],
                item["trigger"]["type"],
                item["action"]["ref"],
                state,
                item["next_fire"] or "-",
            )
        )
    _print_table(table)


@rules_app.command("show")
def show_rule(
    name: NameArg, workspace: Workspace = DEFAULT_WORKSPACE, as_json: AsJson = False
) -> None:
    """A rule, its schedule (a timer's), its next fire and its matches by outcome."""
    from treadle.common.errors import ConflictError, NotFound
    from treadle.scheduler.service import rules
    from treadle.scheduler.store.base import utc_now

    with command_database(False) as store, store.snapshot() as uow:
        try:
            row = rules.find(uow, name, workspace=workspace)
        except NotFound as exc:
            fail(str(exc), _failed())
        except ConflictError as exc:
            fail(str(exc))
        shown = rules.shown(uow, row, now=utc_now(), counts=True)
    if as_json:
        print_json(shown)
        return
    for key, value in shown.items():
        typer.echo(f"{key}: {value}")


@rules_app.command("enable")
def enable_rule(name: NameArg, workspace: Workspace = DEFAULT_WORKSPACE) -> None:
    """Enable a rule (a timer's schedule resumes from now)."""
    _switch(name, workspace, enabled=True)


@rules_app.command("disable")
def disable_rule(name: NameArg, workspace: Workspace = DEFAULT_WORKSPACE) -> None:
    """Disable a rule: it matches nothing until enabled (a timer's fires are skipped)."""
    _switch(name, workspace, enabled=False)


def _switch(name: str, workspace: str, *, enabled: bool) -> None:
    from treadle.scheduler.service import rules
    from treadle.scheduler.store.base import utc_now

    verb = "enable" if enabled else "disable"
    with _changing(f"rule.{verb}", name) as uow:
        row = rules.set_enabled(uow, name, enabled, workspace=workspace, now=utc_now())
    typer.echo(f"{verb}d rule {row.ref!r}")


@rules_app.command("matches")
def list_matches(
    name: NameArg,
    limit: Annotated[int, typer.Option("--limit", min=1, max=1000, help="At most.")] = 100,
    workspace: Workspace = DEFAULT_WORKSPACE,
    as_json: AsJson = False,
) -> None:
    """The rule's matches, newest first: started run X, criteria false, or why not."""
    from treadle.common.errors import ConflictError, NotFound
    from treadle.scheduler.service import rules

    with command_database(False) as store, store.snapshot() as uow:
        try:
            row = rules.find(uow, name, workspace=workspace)
        except NotFound as exc:
            fail(str(exc), _failed())
        except ConflictError as exc:
            fail(str(exc))
        matches = [rules.shown_match(m) for m in uow.rule_matches(row.id, limit=limit)]
    if as_json:
        print_json(matches)
        return
    if not matches:
        typer.echo("no matches", err=True)
        return
    table = [("matched at", "trigger", "outcome", "run", "detail")]
    for match in matches:
        table.append(
            (
                match["matched_at"],
                match["trigger_key"],
                match["outcome"],
                match["run_id"] or "-",
                match["reason"] or "",
            )
        )
    _print_table(table)


def _print_table(rows: Sequence[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        typer.echo("  ".join(cells).rstrip())
