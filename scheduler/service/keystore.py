"""The keystore as its users change and read it: checked keys, and secret values never shown.

``treadle kv`` and the HTTP API set, list, read and delete the entries templates read as
``keystore.<key>``. What is a valid key, how big a value may be, and that a secret entry's
value never leaves the database through a view (only runs read it, into their context)
are decided here, once. Runs take a snapshot of the keystore when they start, so a change
never reaches a run in flight.

Shape of an entry as shown::

    {key, value, secret, updated_at}     # value is null when secret is true
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from treadle.common.access import DEFAULT_WORKSPACE
from treadle.common.errors import LimitExceeded, NotFound, ParameterError
from treadle.common.payload import json_size
from treadle.scheduler.core.namespaces import iso
from treadle.scheduler.store import KeyValue, UnitOfWork

__all__ = [
    "delete_entry",
    "key_problem",
    "keystore_entries",
    "keystore_entry",
    "set_entry",
    "shown_entry",
]


def key_problem(key: str) -> str | None:
    """Why ``key`` cannot name an entry (empty, or starting with ``_``), or None."""
    if not key:
        return "a key must not be empty"
    if key.startswith("_"):
        return f"key {key!r} starts with '_'; such names are reserved"
    return None


def shown_entry(entry: KeyValue) -> dict[str, Any]:
    """``entry`` as users see it: a secret entry's value is null, whoever asks."""
    return {
        "key": entry.key,
        "value": None if entry.secret else entry.value,
        "secret": entry.secret,
        "updated_at": iso(entry.updated_at),
    }


def keystore_entries(uow: UnitOfWork, workspace: str = DEFAULT_WORKSPACE) -> list[dict[str, Any]]:
    """Every entry of ``workspace``, by key, as shown (:func:`shown_entry`)."""
    return [shown_entry(entry) for entry in uow.kv_list(workspace=workspace)]


def keystore_entry(uow: UnitOfWork, key: str, workspace: str = DEFAULT_WORKSPACE) -> dict[str, Any]:
    """One entry of ``workspace`` as shown; NotFound when there is none."""
    return shown_entry(uow.kv_entry(key, workspace=workspace))


def set_entry(
    uow: UnitOfWork,
    key: str,
    value: Any,
    *,
    secret: bool,
    at: datetime,
    max_bytes: int,
    workspace: str = DEFAULT_WORKSPACE,
) -> dict[str, Any]:
    """Create or replace an entry; returns it as shown.

    ParameterError for a key that cannot name one, LimitExceeded for a value over
    ``max_bytes`` of JSON (every run copies the keystore into its context).
    """
    problem = key_problem(key)
    if problem is not None:
        raise ParameterError([problem], subject="key")
    size = json_size(value)
    if size > max_bytes:
        raise LimitExceeded(
            f"the value of {key!r} is {size} bytes of JSON, over the limit of {max_bytes} "
            "(max_payload_bytes)"
        )
    uow.kv_set(key, value, secret=secret, at=at, workspace=workspace)
    return shown_entry(KeyValue(key=key, value=value, secret=secret, updated_at=at))


def delete_entry(uow: UnitOfWork, key: str, workspace: str = DEFAULT_WORKSPACE) -> None:
    """Remove an entry of ``workspace``; NotFound when there is none."""
    if not uow.kv_delete(key, workspace=workspace):
        raise NotFound(f"keystore has no entry {key!r}")
