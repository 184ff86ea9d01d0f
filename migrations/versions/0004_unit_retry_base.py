"""A manual retry gives a task its whole retry budget again.

``task_units.retry_base``: the attempts a unit had made when an operator last retried the
run; the task's retry policy counts attempts from there. Existing units start from 0,
which is what they were counted from before.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("task_units") as batch:
        batch.add_column(sa.Column("retry_base", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("task_units") as batch:
        batch.drop_column("retry_base")
