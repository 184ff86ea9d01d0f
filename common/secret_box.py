"""Encrypting secrets at rest and in dispatch messages, with the key in ``TREADLE_SECRET_KEY``.

The scheduler side encrypts (keystore secrets, ``secret: true`` parameters); workers
decrypt just before an action runs; nobody else ever needs the plaintext. Both meet here,
in ``common``, because the worker never imports the scheduler.

``TREADLE_SECRET_KEY`` is one Fernet key (32 random bytes, URL-safe base64) or a
comma-separated list of them: the first encrypts, every one decrypts (``MultiFernet``), so
a new key is rolled out by putting it first, running ``treadle secrets rotate-key``, and
dropping the old one later. A value is encrypted as its JSON text, so any JSON value can be
a secret. Fernet authenticates what it encrypts: a wrong key or a changed ciphertext fails
to decrypt instead of yielding garbage.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any, Final

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from treadle.common.errors import ConfigurationError, TreadleError

#: The environment variable holding the key(s); named in every message about keys.
SECRET_KEY_VARIABLE: Final = "TREADLE_SECRET_KEY"  # noqa: S105 (a name, not a key)


class SecretKeyMissing(ConfigurationError):
    """A secret must be stored or read and no key is configured."""


class SecretNotDecrypted(TreadleError):
    """A ciphertext that no configured key decrypts (wrong key, or a damaged value)."""


def generate_key() -> str:
    """A new random key, as ``TREADLE_SECRET_KEY`` expects it."""
    return Fernet.generate_key().decode("ascii")


class Keyring:
    """The configured keys: the first encrypts, all decrypt."""

    def __init__(self, keys: Sequence[str], *, origin: str = SECRET_KEY_VARIABLE) -> None:
        if not keys:
            raise SecretKeyMissing(f"{origin} holds no key")
        fernets: list[Fernet] = []
        for position, key in enumerate(keys, start=1):
            try:
                fernets.append(Fernet(key.encode("ascii")))
            except (ValueError, UnicodeEncodeError):
                raise ConfigurationError(
                    f"{origin}: key {position} of {len(keys)} is not a Fernet key (32 bytes "
                    "in URL-safe base64, as `treadle secrets generate-key` prints)"
                ) from None
        self._primary = fernets[0]
        self._all = MultiFernet(fernets)
        self.size = len(fernets)
        self.origin = origin

    @classmethod
    def parse(cls, text: str, *, origin: str = SECRET_KEY_VARIABLE) -> Keyring:
        """Keys from ``key1,key2,...`` (spaces around keys ignored)."""
        return cls([k.strip() for k in text.split(",") if k.strip()], origin=origin)

    def encrypt(self, value: Any) -> str:
        """The ciphertext of ``value`` (its JSON text) with the first key."""
        plain = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        return self._primary.encrypt(plain.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> Any:
        """The value ``token`` holds; :class:`SecretNotDecrypted` if no key opens it."""
        try:
            plain = self._all.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError, AttributeError):
            raise SecretNotDecrypted(
                f"no key in {self.origin} decrypts this secret (a wrong key, or the key it "
                "was encrypted with is no longer listed)"
            ) from None
        return json.loads(plain.decode("utf-8"))

    def is_current(self, token: str) -> bool:
        """Whether ``token`` is already encrypted with the first key."""
        try:
            self._primary.decrypt(token.encode("ascii"))
        except (InvalidToken, UnicodeEncodeError):
            return False
        return True

    def rotate(self, token: str) -> str:
        """``token`` re-encrypted with the first key (any listed key may have made it)."""
        try:
            return self._all.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeEncodeError):
            raise SecretNotDecrypted(
                f"no key in {self.origin} decrypts a stored secret: list the key it was "
                "encrypted with after the new one"
            ) from None
