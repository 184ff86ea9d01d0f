"""API tokens as stored: their SHA-256, role, workspace, and when they end or were used.

The token text is never stored, only its hash (``treadle.common.access.token_hash``); a
request's token is found by the id its text carries, then its hash compared
(``treadle.scheduler.service.access``). Tokens are never deleted: a revoked one keeps its
row, so the audit log's entries about it still name a token that can be looked up.

A name is unique in its workspace among tokens not revoked (a partial unique index), so a
token can be replaced under the same name once the old one is revoked.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import RowMapping, or_, select
from sqlalchemy.exc import IntegrityError

from treadle.common.access import Role
from treadle.common.errors import ConflictError
from treadle.scheduler.store.base import Repository
from treadle.scheduler.store.entries import TokenEntry
from treadle.scheduler.store.models import api_tokens


class TokenRepository(Repository):
    """Creating, finding, listing and revoking API tokens, and noting their use."""

    def create_token(self, entry: TokenEntry) -> None:
        """Store a new token; ConflictError when a token not revoked has its name in its
        workspace."""
        live = select(api_tokens.c.id).where(
            api_tokens.c.workspace == entry.workspace,
            api_tokens.c.name == entry.name,
            api_tokens.c.revoked_at.is_(None),
        )
        if self._conn.execute(live).first() is not None:
            raise _name_taken(entry)
        row = {
            "id": entry.id,
            "name": entry.name,
            "role": entry.role.value,
            "workspace": entry.workspace,
            "token_hash": entry.token_hash,
            "created_at": entry.created_at,
            "created_by": entry.created_by,
            "expires_at": entry.expires_at,
            "revoked_at": entry.revoked_at,
            "last_used_at": entry.last_used_at,
        }
        try:
            self._conn.execute(api_tokens.insert(), row)
        except IntegrityError as exc:  # created by another transaction since the check
            raise _name_taken(entry) from exc

    def token_by_id(self, token_id: str) -> TokenEntry | None:
        row = self._conn.execute(select(api_tokens).where(api_tokens.c.id == token_id))
        found = row.mappings().first()
        return _entry(found) if found is not None else None

    def list_tokens(self, workspace: str | None = None) -> list[TokenEntry]:
        """Every token (of ``workspace`` when given), revoked ones included, by workspace,
        name and creation."""
        stmt = select(api_tokens).order_by(
            api_tokens.c.workspace, api_tokens.c.name, api_tokens.c.created_at, api_tokens.c.id
        )
        if workspace is not None:
            stmt = stmt.where(api_tokens.c.workspace == workspace)
        return [_entry(row) for row in self._conn.execute(stmt).mappings()]

    def revoke_token(self, token_id: str, at: datetime) -> bool:
        """Revoke the token as of ``at``; False when there is no such token or it already
        was revoked (its first revocation time stays)."""
        stmt = (
            api_tokens.update()
            .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return self._conn.execute(stmt).rowcount == 1

    def token_used(self, token_id: str, at: datetime) -> None:
        """Note that the token authenticated a request at ``at`` (never moving it back)."""
        stmt = (
            api_tokens.update()
            .where(
                api_tokens.c.id == token_id,
                or_(api_tokens.c.last_used_at.is_(None), api_tokens.c.last_used_at < at),
            )
            .values(last_used_at=at)
        )
        self._conn.execute(stmt)


def _entry(row: RowMapping) -> TokenEntry:
    return TokenEntry(
        id=row["id"],
        name=row["name"],
        role=Role(row["role"]),
        workspace=row["workspace"],
        token_hash=row["token_hash"],
        created_at=row["created_at"],
        created_by=row["created_by"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
        last_used_at=row["last_used_at"],
    )


def _name_taken(entry: TokenEntry) -> ConflictError:
    return ConflictError(
        f"workspace {entry.workspace!r} already has a token named {entry.name!r} that is "
        "not revoked; revoke it first or choose another name"
    )
