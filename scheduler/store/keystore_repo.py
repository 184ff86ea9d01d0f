"""The keystore: named values templates read as ``keystore.<key>`` (alias ``kv``).

A run copies the plain entries into its context when it starts (from ``kv_list``), so a
run's behaviour never changes because an entry was updated while it ran. A secret entry
is different: it is stored encrypted (``ciphertext``, with the store's key, see
:mod:`.secret_keys`), a run holds a reference to it, and its ciphertext travels to the
worker in the dispatch of a task that uses it. Nothing here ever returns a secret's value:
``kv_get`` and ``kv_list`` give ``***`` for it.

Each workspace has its own keys: every method reads or writes one workspace's entries
(``default``, the CLI's, unless told otherwise); only key rotation spans them all.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from treadle.common.access import DEFAULT_WORKSPACE
from treadle.common.errors import NotFound
from treadle.common.redaction import REDACTED
from treadle.common.secret_refs import FORBIDDEN_IN_NAMES
from treadle.scheduler.store.base import Repository, chunks
from treadle.scheduler.store.codec import encode_value
from treadle.scheduler.store.entries import KeyValue
from treadle.scheduler.store.models import keystore


class KeystoreRepository(Repository):
    """Reading and writing keystore entries."""

    def kv_get(self, key: str, *, workspace: str = DEFAULT_WORKSPACE) -> Any:
        """The value of ``key`` (``***`` for a secret); NotFound if there is no such entry."""
        return self.kv_entry(key, workspace=workspace).value

    def kv_entry(self, key: str, *, workspace: str = DEFAULT_WORKSPACE) -> KeyValue:
        """The entry ``key`` (a secret's value shown as ``***``); NotFound if missing."""
        stmt = select(keystore).where(keystore.c.workspace == workspace, keystore.c.key == key)
        row = self._conn.execute(stmt).mappings().first()
        if row is None:
            raise NotFound(f"keystore has no entry {key!r}")
        return _entry(row)

    def kv_set(
        self,
        key: str,
        value: Any,
        *,
        secret: bool,
        at: datetime,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> None:
        """Store ``value`` under ``key``; a secret is encrypted first (a store without a
        key raises ConfigurationError naming ``TREADLE_SECRET_KEY`` and stores nothing)."""
        ciphertext: str | None = None
        if secret:
            if any(mark in key for mark in FORBIDDEN_IN_NAMES):
                marks = " or ".join(FORBIDDEN_IN_NAMES)
                raise ValueError(f"a secret's key must not contain {marks}")
            ciphertext = self._keys.keyring().encrypt(encode_value(value))
        row = {
            "workspace": workspace,
            "key": key,
            "value": None if secret else encode_value(value),
            "secret": secret,
            "updated_at": at,
            "ciphertext": ciphertext,
        }
        self._upsert(keystore, [row], ("workspace", "key"))

    def kv_delete(self, key: str, *, workspace: str = DEFAULT_WORKSPACE) -> bool:
        result = self._conn.execute(
            keystore.delete().where(keystore.c.workspace == workspace, keystore.c.key == key)
        )
        return result.rowcount == 1

    def kv_list(self, *, workspace: str = DEFAULT_WORKSPACE) -> list[KeyValue]:
        """Every entry of ``workspace`` by key; a secret's value is ``***``."""
        stmt = select(keystore).where(keystore.c.workspace == workspace).order_by(keystore.c.key)
        rows = self._conn.execute(stmt).mappings()
        return [_entry(row) for row in rows]

    # -- for the dispatch path and key rotation (ciphertexts, never values) -----------------

    def kv_ciphertexts(
        self, keys: Collection[str], *, workspace: str = DEFAULT_WORKSPACE
    ) -> dict[str, str]:
        """The ciphertexts of the secret entries among ``keys`` that have one (a secret
        left in plain text from before encryption has none until ``rotate-key``)."""
        found: dict[str, str] = {}
        for batch in chunks(sorted(set(keys))):
            rows = self._conn.execute(
                select(keystore.c.key, keystore.c.ciphertext).where(
                    keystore.c.workspace == workspace,
                    keystore.c.key.in_(batch),
                    keystore.c.secret.is_(True),
                    keystore.c.ciphertext.is_not(None),
                )
            )
            found.update({str(key): str(ciphertext) for key, ciphertext in rows})
        return found

    def kv_secret_rows(self) -> list[tuple[str, str, str | None, Any]]:
        """Every secret entry of every workspace as ``(workspace, key, ciphertext, legacy
        plain value)``, locked for update on PostgreSQL (for ``treadle secrets rotate-key``)."""
        stmt = (
            select(keystore.c.workspace, keystore.c.key, keystore.c.ciphertext, keystore.c.value)
            .where(keystore.c.secret.is_(True))
            .order_by(keystore.c.workspace, keystore.c.key)
        )
        rows = self._conn.execute(self._lock_rows(stmt))
        return [(workspace, key, ciphertext, value) for workspace, key, ciphertext, value in rows]

    def kv_store_ciphertext(self, workspace: str, key: str, ciphertext: str) -> None:
        """Replace a secret entry's ciphertext (and drop any plain value it still held)."""
        self._conn.execute(
            update(keystore)
            .where(
                keystore.c.workspace == workspace,
                keystore.c.key == key,
                keystore.c.secret.is_(True),
            )
            .values(ciphertext=ciphertext, value=None)
        )


def _entry(row: Any) -> KeyValue:
    secret = bool(row["secret"])
    return KeyValue(
        key=row["key"],
        value=REDACTED if secret else row["value"],
        secret=secret,
        updated_at=row["updated_at"],
    )
