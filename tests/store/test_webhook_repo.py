"""The webhooks repository on SQLite and PostgreSQL: secrets stored encrypted, names unique
across workspaces, a delivery claimed once, old deliveries pruned, and pack webhooks
registered as their packs declare them."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from treadle.common.errors import ConflictError
from treadle.common.secret_box import generate_key
from treadle.common.spec import PackSpec, WebhookSpec
from treadle.scheduler.store import Store
from treadle.scheduler.store.models import webhooks

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SECRET = "shared-secret-0123456"


@pytest.fixture
def keyed(store_url: str) -> Iterator[Store]:
    """A store with a key (PostgreSQL needs one to store any secret)."""
    with Store.open(store_url, secret_key=generate_key()) as opened:
        yield opened


def make(store: Store, name: str, workspace: str = "default") -> None:
    with store.unit_of_work() as uow:
        uow.create_webhook(
            name=name,
            workspace=workspace,
            event_type="push",
            secret=SECRET,
            created_by="token:admin",
            at=T0,
        )


def packs(**declared: list[str]) -> dict[str, PackSpec]:
    return {
        ref: PackSpec(
            ref=ref,
            webhooks=tuple(
                WebhookSpec(name=name, event_type=f"{ref}.event", keystore_secret=f"{ref}.key")
                for name in names
            ),
        )
        for ref, names in declared.items()
    }


def test_the_secret_is_stored_encrypted_and_names_are_unique_everywhere(keyed: Store) -> None:
    make(keyed, "forge", workspace="team-a")
    with pytest.raises(ConflictError, match="already a webhook named 'forge'"):
        make(keyed, "forge", workspace="team-b")
    with keyed.unit_of_work() as uow:
        [row] = uow.connection.execute(select(webhooks)).mappings().all()
        assert SECRET not in str(dict(row))
        assert keyed.keys.keyring().decrypt(row["ciphertext"]) == SECRET
        assert [e.name for e in uow.list_webhooks("team-a")] == ["forge"]
        assert uow.list_webhooks("team-b") == []
        entry = uow.webhook("forge")
    assert entry is not None
    assert SECRET not in repr(entry)
    assert row["ciphertext"] not in repr(entry)


def test_a_delivery_is_claimed_once_and_forgotten_when_old(keyed: Store) -> None:
    make(keyed, "forge")
    with keyed.unit_of_work() as uow:
        assert uow.claim_webhook_delivery("forge", "a" * 64, signed_at=T0, at=T0)
        assert not uow.claim_webhook_delivery("forge", "a" * 64, signed_at=T0, at=T0)
        later = T0 + timedelta(seconds=200)
        assert uow.claim_webhook_delivery("forge", "b" * 64, signed_at=later, at=later)
        assert uow.webhook_delivery_seen("forge", "a" * 64)
        assert uow.prune_webhook_deliveries(T0 + timedelta(seconds=100)) == 1
        assert not uow.webhook_delivery_seen("forge", "a" * 64)
        assert uow.webhook_delivery_seen("forge", "b" * 64)
        assert uow.delete_webhook("forge")
        assert not uow.webhook_delivery_seen("forge", "b" * 64)  # gone with its webhook
        assert not uow.delete_webhook("forge")


def test_pack_webhooks_follow_their_pack_and_never_take_a_name(keyed: Store) -> None:
    make(keyed, "mine")
    with keyed.unit_of_work() as uow:
        problems = uow.register_pack_webhooks(packs(alpha=["a1", "a2", "mine"]), T0)
        assert problems == [
            (
                "alpha",
                "pack 'alpha' declares webhook 'mine', which the API or CLI made first "
                "(webhook names are unique across the installation): not registered",
            )
        ]
        assert uow.register_pack_webhooks(packs(beta=["a1"]), T0) == [
            (
                "beta",
                "pack 'beta' declares webhook 'a1', which pack 'alpha' made first (webhook "
                "names are unique across the installation): not registered",
            )
        ]
        later = T0 + timedelta(hours=1)
        assert uow.register_pack_webhooks(packs(alpha=["a2", "a3"]), later) == []
        found = {e.name: e for e in uow.list_webhooks()}
    assert sorted(found) == ["a2", "a3", "mine"]  # a1 no longer declared: gone
    a2 = found["a2"]
    assert (a2.workspace, a2.pack, a2.keystore_secret, a2.ciphertext) == (
        "default",
        "alpha",
        "alpha.key",
        None,
    )
    assert (a2.created_at, a2.created_by) == (T0, "pack:alpha")  # kept from the first time
    assert found["a3"].created_at == T0 + timedelta(hours=1)
    assert found["mine"].pack is None
