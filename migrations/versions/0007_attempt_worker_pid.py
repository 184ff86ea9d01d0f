"""Record which incarnation of a worker started an attempt (its main process id).

A worker restarted under the same node name answers pings for that name; with the pid its
attempts were started by, the reconciler tells that the attempts of the process that died
are lost instead of taking the new process's answer as proof that they still run. Existing
rows have none (as do attempts started by workers of earlier versions): for them the name
alone counts, as before.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.add_column(sa.Column("worker_pid", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("attempts") as batch:
        batch.drop_column("worker_pid")
