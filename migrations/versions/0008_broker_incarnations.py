"""Remember which incarnation of each broker the schedulers last saw (Redis's ``run_id``).

A Redis broker restarted without persistence comes back empty: every message queued
before is gone. Schedulers notice by its ``run_id`` changing. Kept only in a scheduler's
memory, a restart of Redis while no scheduler ran went unnoticed (the next scheduler took
the new ``run_id`` as the first it saw) and the lost attempts waited for ever. Stored here,
the next scheduler compares with what the last one saw.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "broker_incarnations",
        sa.Column("broker", sa.String(), primary_key=True),
        sa.Column("incarnation", sa.String(), nullable=False),
        sa.Column("noted_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("broker_incarnations")
