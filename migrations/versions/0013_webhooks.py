"""Webhooks: ``webhooks`` (one per name) and ``webhook_deliveries`` (replay refusal).

``POST /api/v1/webhooks/<name>`` takes deliveries signed with a shared secret (HMAC-SHA256
over the timestamp and the body) and turns each into an outside event. So:

* ``webhooks``: the name (the key: unique across the installation, since the URL carries
  nothing else), its workspace, the event type a delivery becomes, who made it and when,
  and where its secret is: encrypted with ``TREADLE_SECRET_KEY`` in ``ciphertext`` for a
  webhook made through the API or the CLI, or the key of a keystore secret entry
  (``keystore_secret``) for one a pack declares (``pack``).
* ``webhook_deliveries``: the signature of each delivery accepted while its timestamp is
  within the tolerance, so the same delivery sent again is refused; older rows are deleted
  as deliveries arrive.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "webhooks",
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("workspace", sa.String(), nullable=False),
        sa.Column("event_type", sa.String(), nullable=False),
        sa.Column("ciphertext", sa.Text(), nullable=True),
        sa.Column("keystore_secret", sa.String(), nullable=True),
        sa.Column("pack", sa.String(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_webhooks")),
    )
    op.create_index("ix_webhooks_workspace_name", "webhooks", ["workspace", "name"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("webhook", sa.String(), nullable=False),
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("webhook", "signature", name=op.f("pk_webhook_deliveries")),
    )
    op.create_index(
        "ix_webhook_deliveries_signed_at", "webhook_deliveries", ["signed_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_deliveries_signed_at", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_index("ix_webhooks_workspace_name", table_name="webhooks")
    op.drop_table("webhooks")
