"""Count API requests per token per minute, in the database every API process shares.

Rate limits must hold across all ``treadle api`` processes (uvicorn workers, replicas), so
the count lives where they all meet: one row per token and minute, incremented by an
upsert. Rows of past minutes are deleted as the API goes.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "api_rate_windows",
        sa.Column("token_id", sa.String(), primary_key=True),
        sa.Column("window_start", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("requests", sa.Integer(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("api_rate_windows")
