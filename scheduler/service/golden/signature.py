"""The ``.sig`` file of a golden record: HMAC-SHA256 over the record's exact bytes.

A golden record is only evidence if nobody could have edited it and recomputed what
checks it: a digest anyone can recompute proves nothing. So the record is signed with a
key only its owners hold (``TREADLE_GOLDEN_KEY``), and the signature sits next to it in
``<record>.sig``, one line of text::

    hmac-sha256 <key id> <64 hex digits>

``<key id>`` is 16 hex digits derived from the key (not the key, and useless to guess it
by) so that a record signed with a rotated key says so instead of looking tampered.
``TREADLE_GOLDEN_KEY`` may list several keys separated by commas: the first signs, every
one verifies. Verification compares in constant time. :func:`signature_problem` says what
is wrong with a signature that does not hold, in the words the CLI and the API use. No I/O
here: the CLI reads and writes the files, the API reads the request.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from treadle.common.errors import ConfigurationError

ALGORITHM: Final = "hmac-sha256"
#: The suffix of the signature file next to a record.
SIG_SUFFIX: Final = ".sig"
#: Keys shorter than this are refused: a guessable key makes the signature worthless.
MIN_KEY_LENGTH: Final = 16

_LINE: Final = re.compile(rf"{ALGORITHM} (?P<key>[0-9a-f]{{16}}) (?P<mac>[0-9a-f]{{64}})")


class SignatureResult(StrEnum):
    """What checking a record's signature found."""

    OK = "ok"
    MISSING = "missing"  # no .sig file
    MALFORMED = "malformed"  # a .sig that is not one ``hmac-sha256 <id> <hex>`` line
    UNKNOWN_KEY = "unknown_key"  # signed with a key that is not set here
    MISMATCH = "mismatch"  # the bytes are not the ones that were signed


@dataclass(frozen=True)
class SignatureCheck:
    """The result of checking a signature, with the key id it names (when readable)."""

    result: SignatureResult
    key_id: str | None = None

    @property
    def ok(self) -> bool:
        return self.result is SignatureResult.OK


@dataclass(frozen=True)
class GoldenKeys:
    """The signing keys: the first signs, every one verifies."""

    keys: tuple[bytes, ...]

    @classmethod
    def parse(cls, setting: str) -> GoldenKeys:
        """From ``TREADLE_GOLDEN_KEY``'s value; :class:`ConfigurationError` naming it when
        a key is empty or too short (the message never shows a key)."""
        keys = tuple(part.strip() for part in setting.split(","))
        for position, key in enumerate(keys, start=1):
            if len(key) < MIN_KEY_LENGTH:
                raise ConfigurationError(
                    f"TREADLE_GOLDEN_KEY: key {position} has {len(key)} characters; a golden "
                    f"record key needs at least {MIN_KEY_LENGTH}"
                )
        return cls(tuple(key.encode("utf-8") for key in keys))

    @property
    def signing_key_id(self) -> str:
        return key_id(self.keys[0])

    @property
    def key_ids(self) -> tuple[str, ...]:
        return tuple(key_id(key) for key in self.keys)

    def sign(self, data: bytes) -> str:
        """The text of the ``.sig`` file for ``data`` (the record's bytes), newline-ended."""
        key = self.keys[0]
        return f"{ALGORITHM} {key_id(key)} {_mac(key, data)}\n"

    def check(self, data: bytes, signature: str | None) -> SignatureCheck:
        """Whether ``signature`` (the ``.sig`` file's text, None when absent) signs ``data``."""
        if signature is None:
            return SignatureCheck(SignatureResult.MISSING)
        match = _LINE.fullmatch(signature.strip())
        if match is None:
            return SignatureCheck(SignatureResult.MALFORMED)
        named = match["key"]
        for key in self.keys:
            if hmac.compare_digest(key_id(key), named):
                good = hmac.compare_digest(_mac(key, data), match["mac"])
                return SignatureCheck(
                    SignatureResult.OK if good else SignatureResult.MISMATCH, named
                )
        return SignatureCheck(SignatureResult.UNKNOWN_KEY, named)


def key_id(key: bytes) -> str:
    """16 hex digits naming ``key`` (a keyed hash of a constant: it reveals nothing of it)."""
    return hmac.new(key, b"treadle golden record key id", hashlib.sha256).hexdigest()[:16]


def _mac(key: bytes, data: bytes) -> str:
    return hmac.new(key, data, hashlib.sha256).hexdigest()


def signature_problem(
    check: SignatureCheck, record: str, signature: str, held: tuple[str, ...] = ()
) -> str:
    """What is wrong with the signature ``check`` found not to hold: ``record`` names the
    record and ``signature`` its signature (``run.jsonl.sig``) for the reader, ``held``
    the ids of the keys it was checked with (:attr:`GoldenKeys.key_ids`)."""
    messages = {
        SignatureResult.MISSING: f"{record} has no signature ({signature} is missing): it "
        "cannot be trusted (--unsigned replays it without checking)",
        SignatureResult.MALFORMED: f"{signature} is not a signature (one line "
        "'hmac-sha256 <key id> <64 hex digits>' expected)",
        SignatureResult.UNKNOWN_KEY: f"{signature} names key {check.key_id}, which "
        f"TREADLE_GOLDEN_KEY does not hold (it holds {', '.join(held)}): signed "
        "with another key, or the key was rotated",
        SignatureResult.MISMATCH: f"{record} does not match its signature {signature}: the "
        "record was changed after it was signed",
    }
    return messages.get(check.result, f"{signature} holds")
