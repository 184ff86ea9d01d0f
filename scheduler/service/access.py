"""Checking API tokens, and issuing and revoking them with an audit entry for each.

The HTTP API calls :func:`authenticate` with the token of each request; the CLI and the
API's token endpoints call :func:`issue` and :func:`revoke`. Each works in the caller's
unit of work, so a token and the audit entry recording its creation are stored together
or not at all.

A refused token gets one message whatever the reason ("invalid, expired or revoked
token"): telling a caller which check failed would help someone probing with stolen or
guessed tokens, and the token itself is never repeated (it would land in logs).
"""

from __future__ import annotations

import hmac
from datetime import datetime, timedelta
from typing import Final

from treadle.common.access import (
    AuditOutcome,
    IssuedToken,
    Principal,
    Role,
    issue_token,
    parse_token,
    token_hash,
)
from treadle.common.errors import Unauthenticated
from treadle.scheduler.core.namespaces import iso
from treadle.scheduler.store import AuditEntry, TokenEntry, UnitOfWork

#: ``last_used_at`` is written at most this often per token: every request writing the
#: same row would serialise a busy client's requests on its lock for no useful precision.
LAST_USED_PRECISION: Final = timedelta(minutes=1)

_REFUSED: Final = "invalid, expired or revoked token"


def verify(reader: UnitOfWork, plaintext: str, now: datetime) -> TokenEntry:
    """The stored token ``plaintext`` is, read only (a snapshot will do); Unauthenticated
    if it is malformed, unknown, wrong, revoked or expired (at ``now``)."""
    token_id = parse_token(plaintext)
    if token_id is None:
        raise Unauthenticated(_REFUSED)
    entry = reader.token_by_id(token_id)
    if entry is None:
        # compare anyway, so an unknown id takes as long as a wrong secret
        hmac.compare_digest(token_hash(plaintext), token_hash(""))
        raise Unauthenticated(_REFUSED)
    if not hmac.compare_digest(token_hash(plaintext), entry.token_hash):
        raise Unauthenticated(_REFUSED)
    if entry.revoked_at is not None or (entry.expires_at is not None and entry.expires_at <= now):
        raise Unauthenticated(_REFUSED)
    return entry


def use_to_note(entry: TokenEntry, now: datetime) -> bool:
    """Whether ``last_used_at`` is older than :data:`LAST_USED_PRECISION` (worth a write)."""
    return entry.last_used_at is None or now - entry.last_used_at >= LAST_USED_PRECISION


def principal_of(entry: TokenEntry) -> Principal:
    """Who a request with this token acts as."""
    return Principal(name=entry.name, role=entry.role, workspace=entry.workspace, token_id=entry.id)


def authenticate(uow: UnitOfWork, plaintext: str, now: datetime) -> Principal:
    """:func:`verify` then note the use (when due) in the same transaction: for callers
    that write anyway. The API verifies in a snapshot and writes only when a use is due."""
    entry = verify(uow, plaintext, now)
    if use_to_note(entry, now):
        uow.token_used(entry.id, now)
    return principal_of(entry)


def issue(
    uow: UnitOfWork,
    *,
    name: str,
    role: Role,
    workspace: str,
    expires_at: datetime | None,
    created_by: Principal,
    now: datetime,
    token: IssuedToken | None = None,
) -> IssuedToken:
    """Store a new token (its hash only) and record ``token.create`` in the audit log.

    The returned :class:`IssuedToken` holds the only copy of the token's text: hand it to
    its holder once. ``token``: one made beforehand (``token_from_text``) instead of a new
    random one. ValueError for an empty name or an expiry not after ``now``;
    ConflictError when a token not revoked already has ``name`` in ``workspace``.
    """
    if not name.strip():
        raise ValueError("a token needs a name")
    if not workspace.strip():
        raise ValueError("a token needs a workspace")
    if expires_at is not None and expires_at <= now:
        raise ValueError(f"the expiry {expires_at.isoformat()} is not in the future")
    issued = token or issue_token()
    uow.create_token(
        TokenEntry(
            id=issued.token_id,
            name=name,
            role=Role(role),
            workspace=workspace,
            token_hash=issued.token_hash,
            created_at=now,
            created_by=created_by.actor,
            expires_at=expires_at,
        )
    )
    details: dict[str, object] = {"name": name, "role": Role(role).value}
    if expires_at is not None:
        details["expires_at"] = iso(expires_at)
    uow.record_audit(
        AuditEntry(
            at=now,
            actor=created_by.actor,
            workspace=workspace,
            action="token.create",
            target=issued.token_id,
            outcome=AuditOutcome.OK,
            details=details,
        )
    )
    return issued


def revoke(uow: UnitOfWork, token_id: str, *, by: Principal, now: datetime) -> bool:
    """Revoke the token as of ``now`` and record ``token.revoke`` in the audit log (in the
    token's workspace). False, and nothing recorded, when no token has that id or it was
    already revoked."""
    entry = uow.token_by_id(token_id)
    if entry is None or not uow.revoke_token(token_id, now):
        return False
    uow.record_audit(
        AuditEntry(
            at=now,
            actor=by.actor,
            workspace=entry.workspace,
            action="token.revoke",
            target=token_id,
            outcome=AuditOutcome.OK,
            details={"name": entry.name},
        )
    )
    return True
