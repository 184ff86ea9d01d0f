"""``treadle db upgrade``: bring a database's schema up to date with the installed Treadle.

Operators run it before starting new versions of the services (the services and the
embedded runner also upgrade on start unless ``TREADLE_SCHEMA_UPGRADE`` is ``wait`` or
``refuse``, as in compose and Helm, where this is the only process that upgrades; a
separate step makes upgrades visible and lets them run under a privileged account). Exit 0
on success; 2 for an unusable URL or invalid settings; 1 when the database cannot be
reached or the upgrade fails.
"""

from __future__ import annotations

from typing import Annotated

import typer

EXIT_FAILED = 1
EXIT_INVALID = 2

db_app = typer.Typer(
    name="db",
    help="Manage Treadle's database schema.",
    no_args_is_help=True,
)


def register(app: typer.Typer) -> None:
    app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def upgrade(
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Database to upgrade (default: TREADLE_DATABASE_URL, else the embedded file).",
            show_default=False,
        ),
    ] = None,
    revision: Annotated[str, typer.Option("--revision", help="Revision to upgrade to.")] = "head",
) -> None:
    """Apply the schema migrations the database is missing and print its revision."""
    from alembic.util import CommandError
    from pydantic import ValidationError
    from sqlalchemy.exc import SQLAlchemyError

    from treadle.common.errors import ConfigurationError, ServiceUnavailable
    from treadle.common.settings import Settings
    from treadle.scheduler.store import migrate
    from treadle.scheduler.store.engine import create_store_engine, safe_url

    if database_url is None:
        try:
            database_url = Settings().database_url
        except ValidationError as exc:
            typer.echo(f"invalid settings: {exc}", err=True)
            raise typer.Exit(EXIT_INVALID) from None
    try:
        engine = create_store_engine(database_url)
    except ConfigurationError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(EXIT_INVALID) from None
    where = safe_url(database_url)
    try:
        before = migrate.current_revision(engine)
        after = migrate.upgrade(engine, revision)
    except (SQLAlchemyError, ServiceUnavailable) as exc:
        reason = getattr(exc, "orig", None) or exc
        first_line = str(reason).strip().splitlines()[0] if str(reason).strip() else repr(exc)
        typer.echo(f"error: cannot upgrade the database at {where}: {first_line}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    except CommandError as exc:  # e.g. an unknown revision
        typer.echo(f"error: cannot upgrade the database at {where}: {exc}", err=True)
        raise typer.Exit(EXIT_FAILED) from None
    finally:
        engine.dispose()
    if before == after:
        typer.echo(f"{where} is at revision {after} (already up to date)")
    else:
        typer.echo(f"{where} upgraded from revision {before or '<empty>'} to {after}")
