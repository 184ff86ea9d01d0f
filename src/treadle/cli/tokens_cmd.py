"""``treadle tokens create|list|revoke``: the API tokens the HTTP API accepts.

Whoever may run ``treadle`` against the database administers it, so these commands act as
an admin of the default workspace named ``cli:<os login>`` (what the audit log records).
A token's text is printed once, by ``create``: the database keeps only its SHA-256, so it
cannot be shown again; ``list`` shows what is known about tokens, never a secret. See
``docs/security.md``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

import typer

from treadle.cli.support import command_database, fail, print_json
from treadle.common.access import DEFAULT_WORKSPACE

if TYPE_CHECKING:
    from treadle.common.access import IssuedToken, Principal, Role
    from treadle.scheduler.store import TokenEntry, UnitOfWork

tokens_app = typer.Typer(
    help="API tokens for the HTTP API: create, list, revoke.", no_args_is_help=True
)

_NOT_SHOWN_AGAIN = (
    "Store this token now: it cannot be shown again (the database keeps only its hash)."
)


def register(app: typer.Typer) -> None:
    app.add_typer(tokens_app, name="tokens")


def cli_principal() -> Principal:
    """Who ``treadle`` commands act as: ``cli:<os login>``, an admin of the default
    workspace."""
    from treadle.common.access import Principal, Role
    from treadle.common.settings import os_login

    return Principal(name=f"cli:{os_login()}", role=Role.ADMIN, workspace=DEFAULT_WORKSPACE)


@tokens_app.command("create")
def create_token(
    name: Annotated[
        str, typer.Option("--name", help="What the token is for (unique among live tokens).")
    ],
    role: Annotated[
        str, typer.Option("--role", help="viewer, operator or admin.", show_default=False)
    ],
    workspace: Annotated[
        str, typer.Option("--workspace", help="The workspace the token acts in.")
    ] = DEFAULT_WORKSPACE,
    expires: Annotated[
        str | None,
        typer.Option(
            "--expires",
            help="When it stops working: after a duration (30d, 12h) or at an ISO date or "
            "time (2027-01-31, UTC unless it says otherwise). Default: never.",
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The new token as JSON.")] = False,
    from_env: Annotated[
        str | None,
        typer.Option(
            "--from-env",
            metavar="VARIABLE",
            help="Take the token's text from this environment variable (a token made "
            "beforehand, e.g. a deployment's first admin token) instead of a new one: "
            "nothing is printed, and a live token with this name and text is left as it is.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Create a token and print it, once: it cannot be shown again."""
    from treadle.common.errors import ConflictError
    from treadle.scheduler.core.namespaces import iso
    from treadle.scheduler.service.access import issue

    now = datetime.now(UTC)
    chosen = _role(role)
    if not name.strip():
        fail("--name must not be empty")
    if not workspace.strip():
        fail("--workspace must not be empty")
    expires_at = _expiry(expires, now) if expires is not None else None
    given = _token_from_env(from_env) if from_env is not None else None
    with command_database(False) as store:
        try:
            with store.unit_of_work() as uow:
                if given is not None and _already_there(uow, name, workspace, given):
                    return
                issued = issue(
                    uow,
                    name=name,
                    role=chosen,
                    workspace=workspace,
                    expires_at=expires_at,
                    created_by=cli_principal(),
                    now=now,
                    token=given,
                )
        except ConflictError as exc:
            fail(str(exc))
    document = {
        "id": issued.token_id,
        "name": name,
        "role": chosen.value,
        "workspace": workspace,
        "created_at": iso(now),
        "expires_at": iso(expires_at),
    }
    if as_json:
        print_json(document if given is not None else {**document, "token": issued.plaintext})
    else:
        ends = f"expires {iso(expires_at)}" if expires_at is not None else "does not expire"
        source = f" from {from_env}" if given is not None else ""
        typer.echo(
            f"created token {issued.token_id} {name!r} (role {chosen.value}, workspace "
            f"{workspace}, {ends}){source}",
            err=True,
        )
        if given is None:
            typer.echo(issued.plaintext)
    if given is None:
        typer.echo(_NOT_SHOWN_AGAIN, err=True)


def _token_from_env(variable: str) -> IssuedToken:
    """``--from-env VARIABLE``: the token its value is (never repeated in a message)."""
    import os

    from treadle.common.access import token_from_text

    text = os.environ.get(variable, "").strip()
    if not text:
        fail(f"--from-env {variable}: the variable is not set (or empty)")
    try:
        return token_from_text(text)
    except ValueError as exc:
        fail(f"--from-env {variable}: {exc}")


def _already_there(uow: UnitOfWork, name: str, workspace: str, token: IssuedToken) -> bool:
    """Whether a live token named ``name`` holds ``token``'s text (then say so: running the
    same bootstrap twice changes nothing). Another live token of that name fails."""
    import hmac

    live = [e for e in uow.list_tokens(workspace) if e.name == name and e.revoked_at is None]
    for entry in live:
        if hmac.compare_digest(entry.token_hash, token.token_hash):
            typer.echo(
                f"token {entry.id} {name!r} (workspace {workspace}) already holds that text; "
                "nothing changed",
                err=True,
            )
            return True
    if live:
        fail(
            f"a token named {name!r} already exists in workspace {workspace} with another "
            f"text: revoke it first (treadle tokens revoke {live[0].id})"
        )
    return False


@tokens_app.command("list")
def list_tokens(
    workspace: Annotated[
        str | None,
        typer.Option("--workspace", help="Only this workspace's tokens (default: all)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The tokens as JSON.")] = False,
) -> None:
    """Every token, revoked and expired ones included (never a token's secret or hash)."""
    now = datetime.now(UTC)
    with command_database(False) as store, store.snapshot() as uow:
        entries = uow.list_tokens(workspace)
    if as_json:
        print_json([_document(entry, now) for entry in entries])
        return
    if not entries:
        typer.echo("no tokens", err=True)
        return
    columns = ("id", "name", "role", "workspace", "status", "created", "expires", "last used")
    rows = [columns, *(_row(entry, now) for entry in entries)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(columns))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        typer.echo("  ".join(cells).rstrip())


@tokens_app.command("revoke")
def revoke_token(token_id: Annotated[str, typer.Argument(help="The token's id.")]) -> None:
    """Revoke a token: requests with it are refused from now on."""
    from treadle.scheduler.core.namespaces import iso
    from treadle.scheduler.service.access import revoke

    now = datetime.now(UTC)
    with command_database(False) as store, store.unit_of_work() as uow:
        entry = uow.token_by_id(token_id)
        if entry is None:
            fail(f"no token {token_id!r} (treadle tokens list shows the ids)")
        if not revoke(uow, token_id, by=cli_principal(), now=now):
            typer.echo(
                f"token {token_id} ({entry.name!r}) was already revoked at "
                f"{iso(entry.revoked_at)}; nothing changed",
                err=True,
            )
            return
    typer.echo(f"revoked token {token_id} ({entry.name!r}, workspace {entry.workspace})")


def _role(text: str) -> Role:
    from treadle.common.access import Role

    try:
        return Role(text)
    except ValueError:
        fail(f"--role {text!r} is not a role; one of {', '.join(r.value for r in Role)}")


def _expiry(text: str, now: datetime) -> datetime:
    """``--expires``: a duration from now (a unit required) or an ISO date or time."""
    from datetime import timedelta

    from treadle.common.loader.durations import DurationError, parse_duration

    if text.strip().replace(".", "", 1).isdigit():
        fail(f"--expires {text!r}: give a unit, for example 30d or 12h, or an ISO date")
    moment: datetime
    try:
        moment = now + parse_duration(text)
    except DurationError:
        try:
            parsed = datetime.fromisoformat(text.strip())
        except ValueError:
            fail(
                f"--expires {text!r}: expected a duration such as 30d or 12h, or an ISO "
                "date or time such as 2027-01-31 or 2027-01-31T12:00:00Z"
            )
        moment = parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)
    if moment - now <= timedelta(0):
        fail(f"--expires {text!r}: that is not in the future")
    return moment


def _status(entry: TokenEntry, now: datetime) -> str:
    if entry.revoked_at is not None:
        return "revoked"
    if entry.expires_at is not None and entry.expires_at <= now:
        return "expired"
    return "active"


def _document(entry: TokenEntry, now: datetime) -> dict[str, Any]:
    from treadle.scheduler.core.namespaces import iso

    return {
        "id": entry.id,
        "name": entry.name,
        "role": entry.role.value,
        "workspace": entry.workspace,
        "status": _status(entry, now),
        "created_at": iso(entry.created_at),
        "created_by": entry.created_by,
        "expires_at": iso(entry.expires_at),
        "revoked_at": iso(entry.revoked_at),
        "last_used_at": iso(entry.last_used_at),
    }


def _row(entry: TokenEntry, now: datetime) -> tuple[str, ...]:
    from treadle.scheduler.core.namespaces import iso

    status = _status(entry, now)
    if entry.revoked_at is not None:
        status = f"revoked {iso(entry.revoked_at)}"
    return (
        entry.id,
        entry.name,
        entry.role.value,
        entry.workspace,
        status,
        iso(entry.created_at) or "",
        iso(entry.expires_at) or "never",
        iso(entry.last_used_at) or "never",
    )
