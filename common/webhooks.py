"""How a webhook delivery is signed: the one scheme the API checks and every sender follows.

Outside systems (a forge, a payment provider, a script with ``curl``) call ``POST
/api/v1/webhooks/{name}`` without an API token: a delivery proves where it comes from by
its signature, made with a secret shared by the sender and Treadle. The scheme lives here,
with no I/O, so the server that verifies (``treadle.scheduler.service.webhooks``), tests
and Python senders compute the very same bytes::

    X-Treadle-Timestamp: <the Unix time in seconds, digits only>
    X-Treadle-Signature: sha256=<hex of HMAC-SHA256(secret, f"{timestamp}.".encode() + body)>

``body`` is the request body exactly as sent (bytes, before any parsing), and the secret is
its UTF-8 text. Signing the timestamp with the body is what lets the server refuse a
delivery recorded and sent again later (outside its tolerance), and a replay inside it
(the same signature seen before). See ``docs/api.md`` and ``docs/security.md``.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from typing import Final

__all__ = [
    "GENERATED_SECRET_PREFIX",
    "SIGNATURE_HEADER",
    "SIGNATURE_PREFIX",
    "TIMESTAMP_HEADER",
    "WEBHOOK_NAME",
    "generate_secret",
    "parse_signature",
    "parse_timestamp",
    "sign",
    "signed_headers",
]

#: The header carrying the Unix time (seconds) the sender signed the delivery at.
TIMESTAMP_HEADER: Final = "X-Treadle-Timestamp"
#: The header carrying ``sha256=<hex>``.
SIGNATURE_HEADER: Final = "X-Treadle-Signature"
#: What the signature header's value starts with (the algorithm).
SIGNATURE_PREFIX: Final = "sha256="
#: What a generated secret starts with, so leaked ones are easy to recognise.
GENERATED_SECRET_PREFIX: Final = "whsec_"  # noqa: S105 (a public marker, not a secret)

#: A webhook's name: it is the last part of the URL, so letters, digits, ``.``, ``_`` and
#: ``-`` only, starting with a letter or digit, at most 100 characters.
WEBHOOK_NAME: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")

_TIMESTAMP: Final = re.compile(r"[0-9]{1,12}")
_SIGNATURE: Final = re.compile(r"sha256=(?P<hex>[0-9a-fA-F]{64})")
_SECRET_BYTES: Final = 32


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The hex HMAC-SHA256 of ``f"{timestamp}.".encode() + body`` keyed with ``secret``."""
    message = f"{timestamp}.".encode("ascii") + body
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signed_headers(secret: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The two headers a delivery of ``body`` signed at ``timestamp`` carries."""
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: SIGNATURE_PREFIX + sign(secret, timestamp, body),
    }


def parse_timestamp(value: str) -> int | None:
    """The Unix time a timestamp header holds, or None when it is not 1 to 12 digits."""
    text = value.strip()
    return int(text) if _TIMESTAMP.fullmatch(text) else None


def parse_signature(value: str) -> str | None:
    """The lowercase hex digest of a ``sha256=<64 hex digits>`` header, or None."""
    match = _SIGNATURE.fullmatch(value.strip())
    return match["hex"].lower() if match is not None else None


def generate_secret() -> str:
    """A new random shared secret: ``whsec_`` and 32 random bytes in URL-safe base64."""
    return GENERATED_SECRET_PREFIX + secrets.token_urlsafe(_SECRET_BYTES)
