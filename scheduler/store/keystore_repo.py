"""The keystore: named values templates read as ``keystore.<key>`` (alias ``kv``).

A run copies the entries into its context when it starts (from ``kv_list``), so a
run's behaviour never changes because an entry was updated while it ran. Secret entries
are stored like the others (protect the database); ``secret`` tells readers to mask them.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select

from treadle.common.errors import NotFound
from treadle.scheduler.store.base import Repository
from treadle.scheduler.store.codec import encode_value
from treadle.scheduler.store.entries import KeyValue
from treadle.scheduler.store.models import keystore


class KeystoreRepository(Repository):
    """Reading and writing keystore entries."""

    def kv_get(self, key: str) -> Any:
        """The value of ``key``; NotFound if there is no such entry."""
        row = self._conn.execute(select(keystore.c.value).where(keystore.c.key == key)).first()
        if row is None:
            raise NotFound(f"keystore has no entry {key!r}")
        return row[0]

    def kv_set(self, key: str, value: Any, *, secret: bool, at: datetime) -> None:
        self._upsert(
            keystore,
            [{"key": key, "value": encode_value(value), "secret": secret, "updated_at": at}],
            ("key",),
        )

    def kv_delete(self, key: str) -> bool:
        result = self._conn.execute(keystore.delete().where(keystore.c.key == key))
        return result.rowcount == 1

    def kv_list(self) -> list[KeyValue]:
        rows = self._conn.execute(select(keystore).order_by(keystore.c.key)).mappings()
        return [
            KeyValue(
                key=row["key"],
                value=row["value"],
                secret=row["secret"],
                updated_at=row["updated_at"],
            )
            for row in rows
        ]
