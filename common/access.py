"""Who may do what: roles, the principal a request acts as, and the API token format.

The HTTP API and the CLI act for a :class:`Principal`: a token holder (the API) or the
operating-system login that runs ``treadle`` (the CLI, always an admin of the default
workspace). Its :class:`Role` says what it may do, and its ``actor`` is the name the audit
log records. This module holds the pure parts only (no database, no clock); storing,
checking and revoking tokens is ``treadle.scheduler.service.access``.

Tokens look like ``trd_<token_id>_<secret>``: 12 hex digits that name the token (so a
request's token is found by a key look-up, never by scanning hashes) and 32 random bytes.
Only the SHA-256 of the whole text is stored.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass
from enum import StrEnum

#: The workspace the CLI acts in, and that tokens belong to when none is named.
DEFAULT_WORKSPACE = "default"

#: The owner of the workflow definitions every workspace shares (those from the server's
#: pack paths, the CLI and clients), as opposed to those a workspace created via the API.
SHARED_WORKSPACE = ""

#: What every token starts with, so leaked tokens are easy to recognise (and to scan for).
TOKEN_PREFIX = "trd_"  # noqa: S105 (a public marker, not a secret)

_TOKEN_ID_BYTES = 6  # 12 hex digits
_SECRET_BYTES = 32  # 43 characters of URL-safe base64
_TOKEN = re.compile(r"trd_(?P<token_id>[0-9a-f]{12})_(?P<secret>[A-Za-z0-9_-]{43})")


class Role(StrEnum):
    """What a principal may do; each role may do everything the roles below it may.

    ``viewer`` reads; ``operator`` also starts and controls runs, answers inquiries and
    sends events; ``admin`` also manages workflows, packs, tokens, webhooks, secrets and
    schedules.
    """

    VIEWER = "viewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    def allows(self, needed: Role) -> bool:
        """Whether this role may do what needs ``needed``."""
        return _RANK[self] >= _RANK[needed]


_RANK = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}


class AuditOutcome(StrEnum):
    """How an audited action ended: done, refused (not allowed or not authenticated), or
    attempted and failed."""

    OK = "ok"
    REFUSED = "refused"
    FAILED = "failed"


@dataclass(frozen=True)
class Principal:
    """Who a request or command acts as: a name, a role, and the workspace it acts in.

    ``token_id`` is set when the principal authenticated with an API token.
    """

    name: str
    role: Role
    workspace: str
    token_id: str | None = None

    @property
    def actor(self) -> str:
        """The name the audit log records: ``token:<name>`` for a token, else the name."""
        return f"token:{self.name}" if self.token_id is not None else self.name


@dataclass(frozen=True)
class IssuedToken:
    """A new token: its id, the text to hand to its holder once, and what is stored."""

    token_id: str
    plaintext: str
    token_hash: str

    def __repr__(self) -> str:  # never print the secret by accident (logs, tracebacks)
        return f"IssuedToken(token_id={self.token_id!r}, plaintext='***')"


def issue_token() -> IssuedToken:
    """A new random token: ``trd_<12 hex digits>_<32 random bytes, URL-safe base64>``."""
    token_id = secrets.token_hex(_TOKEN_ID_BYTES)
    plaintext = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    return IssuedToken(token_id=token_id, plaintext=plaintext, token_hash=token_hash(plaintext))


def token_from_text(plaintext: str) -> IssuedToken:
    """A token whose text was made outside Treadle, in its format (a deployment's first
    admin token, set in its environment). ValueError, never repeating the text, when it is
    not a token."""
    token_id = parse_token(plaintext)
    if token_id is None:
        raise ValueError(
            f"not a Treadle token: expected {TOKEN_PREFIX}<12 hex digits>_<43 characters of "
            "URL-safe base64> (docs/deployment.md says how to make one)"
        )
    return IssuedToken(token_id=token_id, plaintext=plaintext, token_hash=token_hash(plaintext))


def token_hash(plaintext: str) -> str:
    """The SHA-256 (hex) of the whole token text: what the database stores.

    A plain fast hash is enough here, unlike for passwords: a token carries 256 random
    bits, so nobody can guess candidates to hash, and a slow key-derivation function
    (bcrypt, scrypt, argon2) would only make every API request slower without making a
    stolen hash any easier to protect.
    """
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def parse_token(plaintext: str) -> str | None:
    """The token id of a token in Treadle's format; ``None`` when the text is not one."""
    match = _TOKEN.fullmatch(plaintext)
    return match["token_id"] if match is not None else None
