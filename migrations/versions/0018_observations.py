"""What the scheduler last observed of the broker and the workers: ``queue_observations``
(a work queue's length and consumers) and ``worker_observations`` (when a worker was last
heard from), so any process can say why a task waits. See ``observation_repo.py``.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | Sequence[str] | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "queue_observations",
        sa.Column("queue", sa.String(), nullable=False),
        sa.Column("messages", sa.Integer(), nullable=False),
        sa.Column("consumers", sa.Integer(), nullable=True),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("queue", name=op.f("pk_queue_observations")),
    )
    op.create_table(
        "worker_observations",
        sa.Column("hostname", sa.String(), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("queues", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("hostname", name=op.f("pk_worker_observations")),
    )


def downgrade() -> None:
    op.drop_table("worker_observations")
    op.drop_table("queue_observations")
