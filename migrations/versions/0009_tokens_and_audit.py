"""API tokens with roles, and the audit log the database keeps append-only.

``api_tokens`` holds the SHA-256 of each token (never the token), its role and workspace,
who made it and when it expires, was revoked or last used. A name is unique in its
workspace among the tokens not revoked (a partial unique index, on both databases), so
revoking a token frees its name for the one replacing it.

``audit_log`` records who did what (``run.start``, ``token.create``, ...) and how it ended.
The database itself refuses to change or remove entries: on PostgreSQL a trigger function
raises on UPDATE and DELETE (row triggers) and on TRUNCATE (a statement trigger); on SQLite
BEFORE UPDATE and BEFORE DELETE triggers abort the statement. Both fail with the SQLSTATE
class of integrity errors (``restrict_violation`` on PostgreSQL, a constraint error on
SQLite). A later migration that rebuilds ``audit_log`` on SQLite (batch mode copies the
table) must create the triggers again.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENUM_LEN = 32
_LIVE_TOKEN = sa.text("revoked_at IS NULL")

_PG_FUNCTION = """
CREATE FUNCTION treadle_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only: % is refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$
"""

_PG_TRIGGERS = (
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION treadle_audit_log_append_only()",
    "CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log "
    "FOR EACH STATEMENT EXECUTE FUNCTION treadle_audit_log_append_only()",
)

_PG_DROP = (
    "DROP TRIGGER IF EXISTS audit_log_no_truncate ON audit_log",
    "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
    "DROP FUNCTION IF EXISTS treadle_audit_log_append_only()",
)

_SQLITE_TRIGGERS = (
    "CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: UPDATE is refused'); END",
    "CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only: DELETE is refused'); END",
)

_SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS audit_log_no_delete",
    "DROP TRIGGER IF EXISTS audit_log_no_update",
)


def _utc(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _str(name: str, *, nullable: bool, length: int | None = None) -> sa.Column[object]:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def _postgres() -> bool:
    return op.get_bind().dialect.name == "postgresql"


def upgrade() -> None:
    op.create_table(
        "api_tokens",
        _str("id", nullable=False),
        _str("name", nullable=False),
        _str("role", nullable=False, length=ENUM_LEN),
        _str("workspace", nullable=False),
        _str("token_hash", nullable=False, length=64),
        _utc("created_at", nullable=False),
        _str("created_by", nullable=False),
        _utc("expires_at", nullable=True),
        _utc("revoked_at", nullable=True),
        _utc("last_used_at", nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
    )
    op.create_index(
        "uq_api_tokens_workspace_name_live",
        "api_tokens",
        ["workspace", "name"],
        unique=True,
        sqlite_where=_LIVE_TOKEN,
        postgresql_where=_LIVE_TOKEN,
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _utc("at", nullable=False),
        _str("actor", nullable=False),
        _str("workspace", nullable=False),
        _str("action", nullable=False),
        _str("target", nullable=True),
        _str("outcome", nullable=False, length=ENUM_LEN),
        sa.Column("details", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_workspace_id", "audit_log", ["workspace", "id"])
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    if _postgres():
        op.execute(_PG_FUNCTION)
        statements: Sequence[str] = _PG_TRIGGERS
    else:
        statements = _SQLITE_TRIGGERS
    for statement in statements:
        op.execute(statement)


def downgrade() -> None:
    for statement in _PG_DROP if _postgres() else _SQLITE_DROP:
        op.execute(statement)
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_index("ix_audit_log_workspace_id", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_index("uq_api_tokens_workspace_name_live", table_name="api_tokens")
    op.drop_table("api_tokens")
