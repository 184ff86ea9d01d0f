"""``treadle rules list|show|enable|disable|matches``: the packs' rules (``docs/rules.md``).

Rules come from the packs' ``rules/`` folders (stored when ``treadle scheduler`` starts or
the packs are reloaded); these commands look at them and switch them on and off, on the
database directly (``TREADLE_DATABASE_URL``) like ``treadle schedules``: changes are in
the audit log as ``cli:<os login>`` (``rule.enable``, ``rule.disable``). NAME is a rule's
ref (``monitoring.health_check``) or its name when no other rule shares it.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from treadle.cli.admin_change import audited_change, print_table
from treadle.cli.support import ExitCode, command_database, fail, print_json
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
    print_table(table)


@rules_app.command("show")
def show_rule(
    name: NameArg, workspace: Workspace = DEFAULT_WORKSPACE, as_json: AsJson = False
) -> None:
    """A rule, its schedule (a timer's), its next fire and its matches by outcome."""
    from treadle.scheduler.service import rules
    from treadle.scheduler.store.base import utc_now

    with command_database(False) as store, store.snapshot() as uow:
        row = _found(uow, name, workspace)
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


def _found(uow: Any, name: str, workspace: str) -> Any:
    """The rule NAME names (its ref, or its name when unique); exit 1 if none, 2 if ambiguous."""
    from treadle.common.errors import ConflictError, NotFound
    from treadle.scheduler.service import rules

    try:
        return rules.find(uow, name, workspace=workspace)
    except NotFound as exc:
        fail(str(exc), ExitCode.FAILED)
    except ConflictError as exc:
        fail(str(exc))


def _switch(name: str, workspace: str, *, enabled: bool) -> None:
    from treadle.scheduler.service import rules
    from treadle.scheduler.store.base import utc_now

    verb = "enable" if enabled else "disable"
    with audited_change(f"rule.{verb}", name) as (_store, uow, _who):
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
    from treadle.scheduler.service import rules

    with command_database(False) as store, store.snapshot() as uow:
        row = _found(uow, name, workspace)
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
    print_table(table)
