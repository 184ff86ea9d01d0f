"""Run-level inquiries: an inquiry says why it was opened (``purpose``: a task's own
question, a task's escalation, or the run's budget), and one opened by the run's budget
belongs to no task (``task`` may be null). See docs/governance.md.

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-12
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | Sequence[str] | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("inquiries") as batch:
        batch.add_column(
            sa.Column("purpose", sa.String(length=32), nullable=False, server_default="task")
        )
        batch.alter_column("task", existing_type=sa.String(), nullable=True)


def downgrade() -> None:
    op.execute("UPDATE inquiries SET task = '' WHERE task IS NULL")
    with op.batch_alter_table("inquiries") as batch:
        batch.alter_column("task", existing_type=sa.String(), nullable=False)
        batch.drop_column("purpose")
