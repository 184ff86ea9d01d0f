"""Secrets encrypted at rest: ``keystore.ciphertext`` and the per-run ``run_secrets`` table.

A secret keystore entry now keeps its value encrypted (Fernet, ``TREADLE_SECRET_KEY``) in
``ciphertext``, with ``value`` null. ``run_secrets`` holds the encrypted values of a run's
``secret: true`` parameters, one row per parameter; the run itself holds references.

Secret entries stored before this revision stay in ``value`` as they were: the migration
has no key to encrypt them with. ``treadle secrets rotate-key`` encrypts them (and a
worker asked to use one says so).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("keystore") as batch:
        batch.add_column(sa.Column("ciphertext", sa.Text(), nullable=True))
    op.create_table(
        "run_secrets",
        sa.Column("run_id", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"],
            ["runs.id"],
            name=op.f("fk_run_secrets_run_id_runs"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("run_id", "name", name=op.f("pk_run_secrets")),
    )


def downgrade() -> None:
    op.drop_table("run_secrets")
    with op.batch_alter_table("keystore") as batch:
        batch.drop_column("ciphertext")
