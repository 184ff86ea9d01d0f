"""Webhooks as stored, and the deliveries seen lately (so a replay can be refused).

A webhook is found by its name alone (the URL ``/api/v1/webhooks/<name>`` carries nothing
else), so names are unique across the installation, whatever the workspace. Its shared
secret is stored like a keystore secret: encrypted with the store's key (see
:mod:`.secret_keys`) in ``ciphertext`` for a webhook made through the API or the CLI; a
webhook a pack declares names a keystore secret entry instead (``keystore_secret``), since
a pack file never holds a secret. Nothing here returns a secret's value: decrypting is the
caller's business (``treadle.scheduler.service.webhooks``), with the store's keys.

``webhook_deliveries`` keeps the signature of each accepted delivery while its timestamp is
within the tolerance; older rows are pruned as deliveries arrive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import RowMapping, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from treadle.common.access import DEFAULT_WORKSPACE
from treadle.common.errors import ConflictError
from treadle.common.spec import PackSpec
from treadle.scheduler.store.base import Repository
from treadle.scheduler.store.models import webhook_deliveries, webhooks

__all__ = ["WebhookEntry", "WebhookRepository"]


@dataclass(frozen=True, slots=True)
class WebhookEntry:
    """One webhook: where deliveries go (``event_type``, ``workspace``) and where its secret
    is (``ciphertext`` for one made through the API or CLI, ``keystore_secret`` for one a
    pack declares)."""

    name: str
    workspace: str
    event_type: str
    ciphertext: str | None
    keystore_secret: str | None
    pack: str | None
    created_at: datetime
    created_by: str

    def __repr__(self) -> str:  # never print a ciphertext by accident (logs, tracebacks)
        return f"WebhookEntry(name={self.name!r}, workspace={self.workspace!r}, ...)"


class WebhookRepository(Repository):
    """Creating, finding, listing and deleting webhooks; remembering recent deliveries."""

    def create_webhook(
        self,
        *,
        name: str,
        workspace: str,
        event_type: str,
        secret: str,
        created_by: str,
        at: datetime,
    ) -> WebhookEntry:
        """Store a new webhook with ``secret`` encrypted (a store without a key raises
        ConfigurationError naming ``TREADLE_SECRET_KEY`` and stores nothing);
        ConflictError when the name is taken, in any workspace."""
        taken = self.webhook(name)
        if taken is not None:
            raise _name_taken(taken)
        row = {
            "name": name,
            "workspace": workspace,
            "event_type": event_type,
            "ciphertext": self._keys.keyring().encrypt(secret),
            "keystore_secret": None,
            "pack": None,
            "created_at": at,
            "created_by": created_by,
        }
        insert = (postgresql.insert if self._postgres else sqlite.insert)(webhooks)
        added = self._conn.execute(insert.values(**row).on_conflict_do_nothing())
        if added.rowcount != 1:  # made by another transaction since the check
            raise ConflictError(f"there is already a webhook named {name!r}")
        return _entry(row)

    def webhook(self, name: str) -> WebhookEntry | None:
        """The webhook ``name``, whatever its workspace, or None."""
        row = self._conn.execute(select(webhooks).where(webhooks.c.name == name)).mappings()
        found = row.first()
        return _entry(found) if found is not None else None

    def list_webhooks(self, workspace: str | None = None) -> list[WebhookEntry]:
        """Every webhook (of ``workspace`` when given), by name."""
        stmt = select(webhooks).order_by(webhooks.c.name)
        if workspace is not None:
            stmt = stmt.where(webhooks.c.workspace == workspace)
        return [_entry(row) for row in self._conn.execute(stmt).mappings()]

    def delete_webhook(self, name: str) -> bool:
        """Remove the webhook and the deliveries remembered for it; False when there is
        none."""
        self._conn.execute(delete(webhook_deliveries).where(webhook_deliveries.c.webhook == name))
        gone = self._conn.execute(delete(webhooks).where(webhooks.c.name == name))
        return gone.rowcount == 1

    def register_pack_webhooks(
        self, packs: Mapping[str, PackSpec], at: datetime
    ) -> list[tuple[str, str]]:
        """Make the stored webhooks of each of ``packs`` what it declares now (in the
        default workspace); webhooks of other packs are left alone. Returns ``(pack, why)``
        for each declared webhook that could not be registered (its name is taken by a
        webhook made through the API or by another pack)."""
        problems: list[tuple[str, str]] = []
        for ref in sorted(packs):
            declared = {hook.name: hook for hook in packs[ref].webhooks}
            stale = select(webhooks.c.name).where(webhooks.c.pack == ref)
            for (name,) in self._conn.execute(stale).all():
                if name not in declared:
                    self.delete_webhook(name)
            for name in sorted(declared):
                hook = declared[name]
                existing = self.webhook(name)
                if existing is not None and existing.pack != ref:
                    owner = f"pack {existing.pack!r}" if existing.pack else "the API or CLI"
                    problems.append(
                        (
                            ref,
                            f"pack {ref!r} declares webhook {name!r}, which {owner} made "
                            "first (webhook names are unique across the installation): "
                            "not registered",
                        )
                    )
                    continue
                values = {
                    "workspace": DEFAULT_WORKSPACE,
                    "event_type": hook.event_type,
                    "ciphertext": None,
                    "keystore_secret": hook.keystore_secret,
                    "pack": ref,
                }
                if existing is None:
                    row = {"name": name, **values, "created_at": at, "created_by": f"pack:{ref}"}
                    self._conn.execute(webhooks.insert(), row)
                else:
                    self._conn.execute(update(webhooks).where(webhooks.c.name == name), values)
        return problems

    # -- key rotation (ciphertexts, never values) -------------------------------------------

    def webhook_ciphertexts(self) -> list[tuple[str, str]]:
        """``(name, ciphertext)`` of every webhook holding its own secret, locked for
        update on PostgreSQL (for ``treadle secrets rotate-key``)."""
        stmt = (
            select(webhooks.c.name, webhooks.c.ciphertext)
            .where(webhooks.c.ciphertext.is_not(None))
            .order_by(webhooks.c.name)
        )
        return [(str(n), str(c)) for n, c in self._conn.execute(self._lock_rows(stmt))]

    def store_webhook_ciphertext(self, name: str, ciphertext: str) -> None:
        self._conn.execute(
            update(webhooks).where(webhooks.c.name == name).values(ciphertext=ciphertext)
        )

    # -- deliveries -------------------------------------------------------------------------

    def webhook_delivery_seen(self, webhook: str, signature: str) -> bool:
        """Whether a delivery with this signature was accepted (and is still remembered)."""
        stmt = select(webhook_deliveries.c.signature).where(
            webhook_deliveries.c.webhook == webhook, webhook_deliveries.c.signature == signature
        )
        return self._conn.execute(stmt).first() is not None

    def claim_webhook_delivery(
        self, webhook: str, signature: str, *, signed_at: datetime, at: datetime
    ) -> bool:
        """Remember an accepted delivery; False when its signature is remembered already
        (a replay, or the same delivery arriving twice at once)."""
        insert = (postgresql.insert if self._postgres else sqlite.insert)(webhook_deliveries)
        stmt = insert.values(
            webhook=webhook, signature=signature, signed_at=signed_at, received_at=at
        ).on_conflict_do_nothing()
        return self._conn.execute(stmt).rowcount == 1

    def prune_webhook_deliveries(self, signed_before: datetime) -> int:
        """Forget the deliveries signed before ``signed_before``; returns how many."""
        gone = self._conn.execute(
            delete(webhook_deliveries).where(webhook_deliveries.c.signed_at < signed_before)
        )
        return int(gone.rowcount)


def _entry(row: RowMapping | Mapping[str, Any]) -> WebhookEntry:
    return WebhookEntry(
        name=str(row["name"]),
        workspace=str(row["workspace"]),
        event_type=str(row["event_type"]),
        ciphertext=None if row["ciphertext"] is None else str(row["ciphertext"]),
        keystore_secret=None if row["keystore_secret"] is None else str(row["keystore_secret"]),
        pack=None if row["pack"] is None else str(row["pack"]),
        created_at=row["created_at"],
        created_by=str(row["created_by"]),
    )


def _name_taken(taken: WebhookEntry) -> ConflictError:
    if taken.pack is not None:
        return ConflictError(
            f"webhook {taken.name!r} is declared by pack {taken.pack!r} (its pack.yaml); "
            "names are unique across the installation: choose another name"
        )
    return ConflictError(
        f"there is already a webhook named {taken.name!r} (names are unique across the "
        "installation, whatever the workspace): choose another name, or delete it first"
    )
