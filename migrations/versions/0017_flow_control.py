"""Flow control: concurrency slots, rate-limit grants, and dispatches held back for them.

``flow_keys`` (one lock row per key), ``flow_slots`` (who holds a slot of a key: an attempt
or a run, counted only while it lives, so a dead holder's slot never leaks) and
``flow_grants`` (the rate limit's sliding window). A dispatch that cannot have its slot or
grant yet waits in the outbox with ``flow_key`` set, which relays skip; ``priority``
orders what is released first. See ``docs/flow-control.md``.

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OUTBOX_COLUMNS = (
    ("flow_workspace", sa.String()),
    ("flow_key", sa.String()),
    ("flow_holder", sa.String()),
    ("flow_until", sa.DateTime(timezone=True)),
    ("flow_since", sa.DateTime(timezone=True)),
    ("flow_wait", sa.Text()),
    ("priority", sa.Integer()),
)


def upgrade() -> None:
    op.create_table(
        "flow_keys",
        sa.Column("workspace", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("workspace", "key", name=op.f("pk_flow_keys")),
    )
    op.create_table(
        "flow_slots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workspace", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("holder", sa.String(), nullable=False),
        sa.Column("scope", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_flow_slots_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow_slots")),
        sa.UniqueConstraint(
            "workspace", "key", "holder", name=op.f("uq_flow_slots_workspace_key_holder")
        ),
    )
    op.create_index("ix_flow_slots_run_id", "flow_slots", ["run_id"])
    op.create_table(
        "flow_grants",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workspace", sa.String(), nullable=False),
        sa.Column("key", sa.String(), nullable=False),
        sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("attempt_id", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_flow_grants_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_flow_grants")),
    )
    op.create_index("ix_flow_grants_key", "flow_grants", ["workspace", "key", "granted_at"])
    op.create_index("ix_flow_grants_run_id", "flow_grants", ["run_id"])
    with op.batch_alter_table("outbox") as batch:
        for name, kind in _OUTBOX_COLUMNS:
            batch.add_column(sa.Column(name, kind, nullable=True))
    op.create_index(
        "ix_outbox_flow_key",
        "outbox",
        ["flow_workspace", "flow_key"],
        postgresql_where=sa.text("flow_key IS NOT NULL"),
        sqlite_where=sa.text("flow_key IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_outbox_flow_key", table_name="outbox")
    with op.batch_alter_table("outbox") as batch:
        for name, _ in reversed(_OUTBOX_COLUMNS):
            batch.drop_column(name)
    op.drop_table("flow_grants")
    op.drop_table("flow_slots")
    op.drop_table("flow_keys")
