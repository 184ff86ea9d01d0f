"""Lifecycle events (``lifecycle_events``: CloudEvents written with the change they tell
of, published by a scheduler) and their webhook deliveries (``lifecycle_deliveries``). See
``lifecycle_repo.py`` and docs/lifecycle-events.md.

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-10
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0019"
down_revision: str | Sequence[str] | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "lifecycle_events",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("cloudevent", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lifecycle_events")),
        sa.UniqueConstraint("event_id", name=op.f("uq_lifecycle_events_event_id")),
    )
    op.create_index(
        op.f("ix_lifecycle_events_run_id"), "lifecycle_events", ["run_id"], unique=False
    )
    op.create_index(
        "ix_lifecycle_events_published_at_id",
        "lifecycle_events",
        ["published_at", "id"],
        unique=False,
    )
    op.create_table(
        "lifecycle_deliveries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("event_id", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("sink", sa.String(), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_lifecycle_deliveries")),
        sa.UniqueConstraint("event_id", "sink", name=op.f("uq_lifecycle_deliveries_event_id_sink")),
    )
    op.create_index(
        op.f("ix_lifecycle_deliveries_run_id"), "lifecycle_deliveries", ["run_id"], unique=False
    )
    op.create_index(
        "ix_lifecycle_deliveries_status_due_at",
        "lifecycle_deliveries",
        ["status", "due_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("lifecycle_deliveries")
    op.drop_table("lifecycle_events")
