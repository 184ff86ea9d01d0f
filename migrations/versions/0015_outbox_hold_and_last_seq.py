"""Fewer round trips per step: ``outbox.held_until`` and ``runs.last_seq``.

Outbox rows a scheduler publishes itself, right after its commit (``outbox.held_until``).

The scheduler that decided a dispatch sends it as soon as the decision commits, instead of
leaving it for a relay pass (a second transaction per step). Its rows are written with
``held_until`` a few seconds ahead: relays claim a row only once it is not held (or its
hold ran out), so a scheduler that dies between its commit and its publish leaves nothing
lost, only delayed until the hold ends. Rows written by clients are never held.

``runs.last_seq``: the seq of the run's last event, read with the run's lock, so a save
numbers its events without a ``max(seq)`` query. Existing runs get theirs from the log.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | Sequence[str] | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("held_until", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("runs") as batch:
        batch.add_column(sa.Column("last_seq", sa.Integer(), nullable=False, server_default="0"))
    op.execute(
        "UPDATE runs SET last_seq = COALESCE("
        "(SELECT max(e.seq) FROM run_events e WHERE e.run_id = runs.id), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.drop_column("last_seq")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_column("held_until")
