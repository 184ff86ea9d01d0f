"""Secrets at rest, as someone holding the database sees them: ciphertext only.

Keystore secrets and runs' secret parameters are stored encrypted with the store's key;
PostgreSQL without ``TREADLE_SECRET_KEY`` refuses to store one (and stores nothing); a
SQLite file gets a generated key file readable by its owner only; ``rotate-key``
re-encrypts everything with the first key, encrypts plain-text secrets left from before,
and is idempotent.
"""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import insert, select

from treadle.common.errors import ConfigurationError
from treadle.common.secret_box import (
    SECRET_KEY_VARIABLE,
    Keyring,
    SecretKeyMissing,
    SecretNotDecrypted,
    generate_key,
)
from treadle.scheduler.core.state import initial_state
from treadle.scheduler.service.secret_rotation import rotate_secrets
from treadle.scheduler.store import Store
from treadle.scheduler.store.models import keystore, run_secrets
from treadle.scheduler.store.secret_keys import key_file_for

PLAIN = "correct-horse-battery-staple"


@pytest.fixture(autouse=True)
def _no_key_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SECRET_KEY_VARIABLE, raising=False)


def _rows(store: Store, table) -> list[dict]:
    with store.unit_of_work() as uow:
        return [dict(row) for row in uow.connection.execute(select(table)).mappings()]


def _with_run(store: Store, run_id: str, build) -> None:
    with store.unit_of_work() as uow:
        uow.insert_run(initial_state(run_id, "tests.flow", build.t0))


def test_a_secret_entry_and_a_run_secret_hold_only_ciphertext(store_url: str, build) -> None:
    key = generate_key()
    with Store.open(store_url, secret_key=key) as store:
        _with_run(store, "r-1", build)
        with store.unit_of_work() as uow:
            uow.kv_set("db.password", PLAIN, secret=True, at=build.t0)
            uow.kv_set("region", "eu-west-1", secret=False, at=build.t0)
            uow.store_run_secrets("r-1", {"token": uow.encrypt_secret({"pw": PLAIN})})
        [entry, plain_entry] = sorted(_rows(store, keystore), key=lambda r: r["key"])
        [secret_row] = _rows(store, run_secrets)
        with store.unit_of_work() as uow:
            listed = {e.key: e.value for e in uow.kv_list()}
            assert uow.kv_ciphertexts(["db.password", "region"]) == {
                "db.password": entry["ciphertext"]
            }
    assert PLAIN not in repr([entry, secret_row])
    assert (entry["value"], entry["secret"]) == (None, True)
    assert (plain_entry["value"], plain_entry["ciphertext"]) == ("eu-west-1", None)
    assert listed == {"db.password": "***", "region": "eu-west-1"}
    keyring = Keyring.parse(key)
    assert keyring.decrypt(entry["ciphertext"]) == PLAIN
    assert keyring.decrypt(secret_row["ciphertext"]) == {"pw": PLAIN}
    with pytest.raises(SecretNotDecrypted, match=SECRET_KEY_VARIABLE):
        Keyring.parse(generate_key()).decrypt(entry["ciphertext"])  # a wrong key


def test_postgresql_without_a_key_refuses_a_secret_and_stores_nothing(
    migrated_database_url: Callable[[str], str], build
) -> None:
    with Store.open(migrated_database_url("postgresql")) as store:
        with store.unit_of_work() as uow:
            uow.kv_set("region", "eu-west-1", secret=False, at=build.t0)  # needs no key
        refused = pytest.raises(SecretKeyMissing, match=f"{SECRET_KEY_VARIABLE} is not set")
        with refused, store.unit_of_work() as uow:
            uow.kv_set("db.password", PLAIN, secret=True, at=build.t0)
        assert [row["key"] for row in _rows(store, keystore)] == ["region"]


def test_a_bad_key_is_a_clear_configuration_error(store_url: str, build) -> None:
    refused = pytest.raises(
        ConfigurationError, match=f"{SECRET_KEY_VARIABLE}: key 1 of 1 is not a Fernet"
    )
    with (
        Store.open(store_url, secret_key="not-a-key") as store,
        refused,
        store.unit_of_work() as uow,
    ):
        uow.kv_set("db.password", PLAIN, secret=True, at=build.t0)


def test_sqlite_generates_a_key_file_only_its_owner_can_read(tmp_path: Path, build) -> None:
    url = f"sqlite:///{tmp_path / 'data' / 'treadle.db'}"
    with Store.open(url) as store:
        with store.unit_of_work() as uow:
            uow.kv_set("db.password", PLAIN, secret=True, at=build.t0)
        key_file = store.keys.key_file
    assert key_file == tmp_path / "data" / ".treadle" / "secret.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    with Store.open(url) as again:  # another process on the same file: the same key
        [row] = _rows(again, keystore)
    assert Keyring.parse(key_file.read_text()).decrypt(row["ciphertext"]) == PLAIN
    # the default database .treadle/treadle.db keeps its key in that same folder
    assert key_file_for(Path(".treadle/treadle.db")) == Path(".treadle/secret.key").absolute()


def test_rotate_key_reencrypts_everything_and_the_old_key_alone_no_longer_decrypts(
    store_url: str, build
) -> None:
    old, new = generate_key(), generate_key()
    with Store.open(store_url, secret_key=old) as store:
        _with_run(store, "r-1", build)
        with store.unit_of_work() as uow:
            uow.kv_set("db.password", PLAIN, secret=True, at=build.t0)
            uow.store_run_secrets(
                "r-1", {"token": uow.encrypt_secret("t-1"), "other": uow.encrypt_secret("t-2")}
            )
            uow.create_webhook(
                name="forge",
                workspace="default",
                event_type="push",
                secret="webhook-secret-1234",
                created_by="t",
                at=build.t0,
            )
            # a secret entry stored in plain text before encryption existed
            uow.connection.execute(
                insert(keystore).values(key="legacy", value=PLAIN, secret=True, updated_at=build.t0)
            )
        before = {row["key"]: row["ciphertext"] for row in _rows(store, keystore)}
        report = rotate_secrets(store, Keyring.parse(f"{new},{old}"), batch_size=1)
        assert report.as_dict() == {
            "keystore_rotated": 1,
            "keystore_current": 0,
            "keystore_encrypted_from_plain": 1,
            "run_secrets_rotated": 2,
            "run_secrets_current": 0,
            "webhooks_rotated": 1,
            "webhooks_current": 0,
        }
        entries = {row["key"]: row for row in _rows(store, keystore)}
        secrets = {row["name"]: row["ciphertext"] for row in _rows(store, run_secrets)}
        again = rotate_secrets(store, Keyring.parse(f"{new},{old}"))
        assert again.as_dict() == {
            "keystore_rotated": 0,
            "keystore_current": 2,
            "keystore_encrypted_from_plain": 0,
            "run_secrets_rotated": 0,
            "run_secrets_current": 2,
            "webhooks_rotated": 0,
            "webhooks_current": 1,
        }
        [webhook] = uow_webhooks(store)
        assert {row["key"]: row["ciphertext"] for row in _rows(store, keystore)} == {
            k: e["ciphertext"] for k, e in entries.items()
        }
    assert entries["db.password"]["ciphertext"] != before["db.password"]
    assert entries["legacy"]["value"] is None
    assert PLAIN not in repr(entries)
    only_new, only_old = Keyring.parse(new), Keyring.parse(old)
    assert only_new.decrypt(entries["db.password"]["ciphertext"]) == PLAIN
    assert only_new.decrypt(entries["legacy"]["ciphertext"]) == PLAIN
    assert [only_new.decrypt(secrets[n]) for n in ("token", "other")] == ["t-1", "t-2"]
    assert only_new.decrypt(str(webhook.ciphertext)) == "webhook-secret-1234"
    for ciphertext in (entries["db.password"]["ciphertext"], secrets["token"], webhook.ciphertext):
        with pytest.raises(SecretNotDecrypted):
            only_old.decrypt(ciphertext)


def uow_webhooks(store: Store) -> list[Any]:
    with store.unit_of_work() as uow:
        return uow.list_webhooks()


def test_rotating_without_the_old_key_names_the_secret_and_changes_nothing(
    store_url: str, build
) -> None:
    old = generate_key()
    with Store.open(store_url, secret_key=old) as store:
        with store.unit_of_work() as uow:
            uow.kv_set("db.password", PLAIN, secret=True, at=build.t0)
        before = _rows(store, keystore)
        with pytest.raises(SecretNotDecrypted, match=r"keystore secret 'db\.password'"):
            rotate_secrets(store, Keyring.parse(generate_key()))
        assert _rows(store, keystore) == before
