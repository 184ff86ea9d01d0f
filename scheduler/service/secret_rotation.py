"""``treadle secrets rotate-key``: every stored secret re-encrypted with the first key.

``TREADLE_SECRET_KEY="new,old"`` decrypts with either key and encrypts with ``new``;
rotating re-encrypts each keystore secret, each webhook's secret and each ``run_secrets``
row still encrypted with another key, after which ``old`` can be dropped (once no
dispatch published before the rotation is still waiting for a worker: messages carry
ciphertexts too). Secret
keystore entries left in plain text from before encryption are encrypted on the way (the
migration could not: it has no key).

Idempotent: what the first key already encrypted is left alone and counted as current,
so a second run changes nothing. The keystore and the webhooks are done in one
transaction (a secret no listed key decrypts rolls it back and is named); run secrets a
batch per transaction.
"""

from __future__ import annotations

from dataclasses import dataclass

from treadle.common.secret_box import Keyring, SecretNotDecrypted
from treadle.scheduler.store import Store


@dataclass
class RotationReport:
    """What a rotation did, by kind of secret."""

    keystore_rotated: int = 0
    keystore_current: int = 0
    keystore_encrypted_from_plain: int = 0
    run_secrets_rotated: int = 0
    run_secrets_current: int = 0
    webhooks_rotated: int = 0
    webhooks_current: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "keystore_rotated": self.keystore_rotated,
            "keystore_current": self.keystore_current,
            "keystore_encrypted_from_plain": self.keystore_encrypted_from_plain,
            "run_secrets_rotated": self.run_secrets_rotated,
            "run_secrets_current": self.run_secrets_current,
            "webhooks_rotated": self.webhooks_rotated,
            "webhooks_current": self.webhooks_current,
        }


def rotate_secrets(store: Store, keyring: Keyring, *, batch_size: int = 500) -> RotationReport:
    """Re-encrypt every stored secret with ``keyring``'s first key; raises
    SecretNotDecrypted (naming the secret) when no listed key opens one."""
    report = RotationReport()
    with store.unit_of_work() as uow:
        for workspace, key, ciphertext, plain in uow.kv_secret_rows():
            if ciphertext is None:
                uow.kv_store_ciphertext(workspace, key, keyring.encrypt(plain))
                report.keystore_encrypted_from_plain += 1
            elif keyring.is_current(ciphertext):
                report.keystore_current += 1
            else:
                where = f"keystore secret {key!r} of workspace {workspace!r}"
                rotated = _rotated(keyring, ciphertext, where)
                uow.kv_store_ciphertext(workspace, key, rotated)
                report.keystore_rotated += 1
        for name, ciphertext in uow.webhook_ciphertexts():
            if keyring.is_current(ciphertext):
                report.webhooks_current += 1
                continue
            rotated = _rotated(keyring, ciphertext, f"the secret of webhook {name!r}")
            uow.store_webhook_ciphertext(name, rotated)
            report.webhooks_rotated += 1
    after: tuple[str, str] | None = None
    while True:
        with store.unit_of_work() as uow:
            page = uow.run_secrets_page(after, batch_size)
            for run_id, name, ciphertext in page:
                if keyring.is_current(ciphertext):
                    report.run_secrets_current += 1
                    continue
                what = f"secret parameter {name!r} of run {run_id}"
                uow.replace_run_secret(run_id, name, _rotated(keyring, ciphertext, what))
                report.run_secrets_rotated += 1
        if len(page) < batch_size:
            return report
        after = (page[-1][0], page[-1][1])


def _rotated(keyring: Keyring, ciphertext: str, what: str) -> str:
    try:
        return keyring.rotate(ciphertext)
    except SecretNotDecrypted as exc:
        raise SecretNotDecrypted(f"{what}: {exc}") from None
