"""The keystore holds named values: set, read, replaced, listed and deleted (a secret's
value is never read back: see test_secrets.py for how it is stored)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from treadle.common.errors import NotFound
from treadle.common.secret_box import generate_key
from treadle.scheduler.store import Store


def test_values_are_set_read_replaced_listed_and_deleted(store_url: str, build) -> None:
    t0 = build.t0
    store = Store.open(store_url, secret_key=generate_key())
    with store.unit_of_work() as uow:
        uow.kv_set("region", "eu-west-1", secret=False, at=t0)
        uow.kv_set("limits", {"cpu": 2, "tags": ["a"]}, secret=False, at=t0)
        uow.kv_set("token", "s3cr3t", secret=True, at=t0)
        uow.kv_set("region", "us-east-2", secret=False, at=t0 + timedelta(1))
    with store.unit_of_work() as uow:
        assert uow.kv_get("region") == "us-east-2"
        assert uow.kv_get("limits") == {"cpu": 2, "tags": ["a"]}
        assert uow.kv_get("token") == "***"  # shown as secret, never its value
        with pytest.raises(NotFound, match="'missing'"):
            uow.kv_get("missing")
        entries = uow.kv_list()
        assert uow.kv_delete("token") is True
        assert uow.kv_delete("token") is False
    store.close()
    assert [(e.key, e.secret) for e in entries] == [
        ("limits", False),
        ("region", False),
        ("token", True),
    ]
    assert entries[1].updated_at == t0 + timedelta(1)
    assert [e.value for e in entries] == [{"cpu": 2, "tags": ["a"]}, "us-east-2", "***"]
