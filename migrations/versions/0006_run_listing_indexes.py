"""Indexes that list runs a page at a time: (status | workflow |) created_at, id.

Listing runs pages by keyset, newest first: ``ORDER BY created_at DESC, id DESC`` after the
previous page's last ``(created_at, id)`` (``scheduler/store/run_listing.py``). Each filter
gets an index in exactly that order, so a page reads its rows and no others, however many
runs are stored. They replace the indexes on ``status``, ``(workflow, created_at)`` and
``created_at``, whose every use they also serve.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-09
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_runs_status_created_at_id", "runs", ["status", "created_at", "id"])
    op.create_index("ix_runs_workflow_created_at_id", "runs", ["workflow", "created_at", "id"])
    op.create_index("ix_runs_created_at_id", "runs", ["created_at", "id"])
    op.drop_index("ix_runs_status", table_name="runs")
    op.drop_index("ix_runs_workflow_created_at", table_name="runs")
    op.drop_index("ix_runs_created_at", table_name="runs")


def downgrade() -> None:
    op.create_index("ix_runs_created_at", "runs", ["created_at"])
    op.create_index("ix_runs_workflow_created_at", "runs", ["workflow", "created_at"])
    op.create_index("ix_runs_status", "runs", ["status"])
    op.drop_index("ix_runs_created_at_id", table_name="runs")
    op.drop_index("ix_runs_workflow_created_at_id", table_name="runs")
    op.drop_index("ix_runs_status_created_at_id", table_name="runs")
