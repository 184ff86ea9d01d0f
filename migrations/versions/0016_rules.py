"""Rules: ``rules`` (a pack's ``rules/`` documents) and ``rule_matches`` (each match).

* ``rules``: one per (workspace, ref): the trigger (``trigger_type``, a core timer or an
  outside event type, and ``trigger_parameters``), the action it starts
  (``action_ref``, ``action_parameters`` as templates) and its ``criteria``; whether it is
  ``enabled``; the ``digest`` of what the pack says (a changed rule replaces the stored
  one); a timer rule's ``schedule_id`` (the ``schedules`` row beat fires, ``source``
  ``rule``) and a ``note`` (a one-shot whose time was past when loaded).
* ``rule_matches``: every match, keyed by (rule, trigger key), with its outcome
  (``started`` and the run, ``criteria_false``, ``failed_to_start`` and why), the
  payload's digest, a timer's payload and an event's id.

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rules",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("workspace", sa.String(), nullable=False),
        sa.Column("ref", sa.String(), nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("pack", sa.String(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("trigger_type", sa.String(), nullable=False),
        sa.Column("trigger_parameters", sa.JSON(), nullable=False),
        sa.Column("action_ref", sa.String(), nullable=False),
        sa.Column("action_parameters", sa.JSON(), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("source_file", sa.String(), nullable=True),
        sa.Column("digest", sa.String(), nullable=False),
        sa.Column("schedule_id", sa.String(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rules")),
        sa.UniqueConstraint("workspace", "ref", name=op.f("uq_rules_workspace_ref")),
    )
    op.create_index("ix_rules_schedule_id", "rules", ["schedule_id"])
    op.create_table(
        "rule_matches",
        sa.Column("id", sa.String(), nullable=False),
        sa.Column("rule_id", sa.String(), nullable=False),
        sa.Column("workspace", sa.String(), nullable=False),
        sa.Column("trigger_key", sa.String(), nullable=False),
        sa.Column("matched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("trigger_type", sa.String(), nullable=False),
        sa.Column("event_id", sa.String(), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=True),
        sa.Column("payload_digest", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_rule_matches")),
        sa.UniqueConstraint(
            "rule_id", "trigger_key", name=op.f("uq_rule_matches_rule_id_trigger_key")
        ),
    )
    op.create_index("ix_rule_matches_rule_id_matched_at", "rule_matches", ["rule_id", "matched_at"])
    op.create_index("ix_rule_matches_run_id", "rule_matches", ["run_id"])


def downgrade() -> None:
    op.drop_index("ix_rule_matches_run_id", table_name="rule_matches")
    op.drop_index("ix_rule_matches_rule_id_matched_at", table_name="rule_matches")
    op.drop_table("rule_matches")
    op.drop_index("ix_rules_schedule_id", table_name="rules")
    op.drop_table("rules")
