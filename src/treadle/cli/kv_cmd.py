"""``treadle kv set|get|list|delete``: the keystore templates read as ``keystore.<key>``.

A run takes a snapshot of the keystore when it starts, so changing a key never changes a
run in flight. Secret values are never printed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated

import typer

from treadle.cli.support import fail, load_settings, print_json

if TYPE_CHECKING:
    from treadle.scheduler.store import Store

kv_app = typer.Typer(help="Keys and values templates read as keystore.<key>.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(kv_app, name="kv")


def _store() -> Store:
    from treadle.scheduler.store import Store

    return Store.open(load_settings().database_url)


@kv_app.command("set")
def set_key(
    key: Annotated[str, typer.Argument()],
    value: Annotated[str, typer.Argument(help="JSON when it parses as JSON, else text.")],
    secret: Annotated[bool, typer.Option("--secret", help="Never print this value.")] = False,
) -> None:
    """Set a key (the value is JSON when it parses, else the text as written)."""
    if not key or key.startswith("_"):
        fail("a key must be non-empty and must not start with '_'")
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = value
    with _store() as store, store.unit_of_work() as uow:
        uow.kv_set(key, parsed, secret=secret, at=datetime.now(UTC))


@kv_app.command("get")
def get_key(key: Annotated[str, typer.Argument()]) -> None:
    """Print a key's value as JSON (secret values are not printed)."""
    with _store() as store, store.unit_of_work() as uow:
        entries = {entry.key: entry for entry in uow.kv_list()}
    entry = entries.get(key)
    if entry is None:
        fail(f"no key {key!r}")
    if entry.secret:
        fail(f"{key!r} is secret; its value is not printed")
    print_json(entry.value)


@kv_app.command("list")
def list_keys() -> None:
    """Every key, with its value unless it is secret."""
    with _store() as store, store.unit_of_work() as uow:
        entries = uow.kv_list()
    for entry in entries:
        shown = "***" if entry.secret else json.dumps(entry.value, ensure_ascii=False)
        typer.echo(f"{entry.key} = {shown}")


@kv_app.command("delete")
def delete_key(key: Annotated[str, typer.Argument()]) -> None:
    """Remove a key."""
    with _store() as store, store.unit_of_work() as uow:
        if not uow.kv_delete(key):
            fail(f"no key {key!r}")
