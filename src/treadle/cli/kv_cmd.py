"""``treadle kv set|get|list|delete``: the keystore templates read as ``keystore.<key>``.

A run takes a snapshot of the keystore when it starts, so changing a key never changes a
run in flight (a secret is read when a task using it is dispatched). Secret values are
stored encrypted (``TREADLE_SECRET_KEY``) and never printed: nothing reads them back.
With ``--api URL`` (or ``TREADLE_API_URL``) the commands go through the HTTP API instead
of the database (setting and deleting need an admin's token), printing the same.
"""

from __future__ import annotations

import json
from typing import Annotated

import typer

from treadle.cli.clients import ApiOption, TokenOption
from treadle.cli.support import fail, print_json

kv_app = typer.Typer(help="Keys and values templates read as keystore.<key>.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(kv_app, name="kv")


@kv_app.command("set")
def set_key(
    key: Annotated[str, typer.Argument()],
    value: Annotated[str, typer.Argument(help="JSON when it parses as JSON, else text.")],
    secret: Annotated[
        bool, typer.Option("--secret", help="Store it encrypted; it is never shown again.")
    ] = False,
    api: ApiOption = None,
    token: TokenOption = None,
) -> None:
    """Set a key (the value is JSON when it parses, else the text as written)."""
    from treadle.cli.clients import command_client, upgrade_database
    from treadle.common.errors import LimitExceeded, ParameterError

    if not key or key.startswith("_"):
        fail("a key must be non-empty and must not start with '_'")
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    with command_client(api, token, prepare=upgrade_database) as client:
        try:
            client.kv_set(key, parsed, secret=secret)
        except (ParameterError, LimitExceeded, ValueError) as exc:
            fail(str(exc))


@kv_app.command("get")
def get_key(
    key: Annotated[str, typer.Argument()], api: ApiOption = None, token: TokenOption = None
) -> None:
    """Print a key's value as JSON (a secret prints as ***: its value is never shown)."""
    from treadle.cli.clients import command_client, upgrade_database
    from treadle.common.errors import NotFound

    with command_client(api, token, prepare=upgrade_database) as client:
        try:
            entry = client.kv_get(key)
        except NotFound:
            fail(f"no key {key!r}")
    if entry["secret"]:
        typer.echo(f"{key!r} is secret: its value is stored encrypted and never shown", err=True)
        typer.echo("***")
        return
    print_json(entry["value"])


@kv_app.command("list")
def list_keys(api: ApiOption = None, token: TokenOption = None) -> None:
    """Every key, with its value unless it is secret."""
    from treadle.cli.clients import command_client, upgrade_database

    with command_client(api, token, prepare=upgrade_database) as client:
        entries = client.kv_list()
    for entry in entries:
        shown = "***" if entry["secret"] else json.dumps(entry["value"], ensure_ascii=False)
        typer.echo(f"{entry['key']} = {shown}")


@kv_app.command("delete")
def delete_key(
    key: Annotated[str, typer.Argument()], api: ApiOption = None, token: TokenOption = None
) -> None:
    """Remove a key."""
    from treadle.cli.clients import command_client, upgrade_database
    from treadle.common.errors import NotFound

    with command_client(api, token, prepare=upgrade_database) as client:
        try:
            client.kv_delete(key)
        except NotFound:
            fail(f"no key {key!r}")
