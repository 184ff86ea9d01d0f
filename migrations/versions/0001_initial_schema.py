"""Initial schema: definitions, registry, runs with executions and units, attempts, the run
event log, the outbox, timers, inquiries, the keystore and outside events.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ENUM_LEN = 32


def _utc(name: str, *, nullable: bool) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _json(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, sa.JSON(), nullable=nullable)


def _str(name: str, *, nullable: bool, length: int | None = None) -> sa.Column[object]:
    return sa.Column(name, sa.String(length=length), nullable=nullable)


def _int(name: str, *, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.Integer(), nullable=nullable)


def _run_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["run_id"], ["runs.id"], name=op.f(f"fk_{table}_run_id_runs"), ondelete="CASCADE"
    )


def upgrade() -> None:
    op.create_table(
        "definitions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _str("ref", nullable=False),
        _int("version"),
        _str("content_hash", nullable=False, length=64),
        _str("dialect", nullable=False, length=ENUM_LEN),
        _json("documents", nullable=False),
        _str("author", nullable=True),
        _utc("created_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_definitions")),
        sa.UniqueConstraint("ref", "version", name=op.f("uq_definitions_ref_version")),
    )
    op.create_table(
        "packs",
        _str("ref", nullable=False),
        _str("version", nullable=True),
        _str("path", nullable=True),
        _json("config"),
        _utc("registered_at", nullable=False),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_packs")),
    )
    op.create_table(
        "actions",
        _str("ref", nullable=False),
        _str("pack_ref", nullable=False),
        _str("runner_type", nullable=False, length=ENUM_LEN),
        _str("entry_point", nullable=True),
        _str("queue", nullable=True),
        _json("parameters"),
        _utc("registered_at", nullable=False),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_actions")),
    )
    op.create_index(op.f("ix_actions_pack_ref"), "actions", ["pack_ref"])

    op.create_table(
        "runs",
        _str("id", nullable=False),
        _str("workflow", nullable=False),
        _int("definition_version", nullable=True),
        _str("status", nullable=False, length=ENUM_LEN),
        _int("depth"),
        _str("parent_run_id", nullable=True),
        _str("parent_attempt_id", nullable=True),
        _str("idempotency_key", nullable=True),
        _str("trigger_event_id", nullable=True),
        _json("context"),
        _json("vars"),
        _json("core"),
        _json("output"),
        _json("error"),
        _utc("created_at", nullable=True),
        _utc("started_at", nullable=True),
        _utc("finished_at", nullable=True),
        _utc("updated_at", nullable=False),
        _int("version"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_runs_idempotency_key")),
        sa.UniqueConstraint("trigger_event_id", name=op.f("uq_runs_trigger_event_id")),
    )
    op.create_index(op.f("ix_runs_status"), "runs", ["status"])
    op.create_index(op.f("ix_runs_parent_run_id"), "runs", ["parent_run_id"])
    op.create_index("ix_runs_created_at", "runs", ["created_at"])
    op.create_index("ix_runs_workflow_created_at", "runs", ["workflow", "created_at"])

    op.create_table(
        "task_executions",
        _str("run_id", nullable=False),
        _int("execution_id"),
        _str("task", nullable=False),
        _int("scope"),
        _str("status", nullable=False, length=ENUM_LEN),
        _utc("started_at", nullable=False),
        _utc("finished_at", nullable=True),
        sa.Column("with_items", sa.Boolean(), nullable=False),
        _int("next_unit"),
        _int("in_flight"),
        _int("done"),
        _int("unit_count"),
        _json("result"),
        _json("error"),
        _str("timer", nullable=True),
        _str("inquiry_id", nullable=True),
        _json("released_with"),
        _run_fk("task_executions"),
        sa.PrimaryKeyConstraint("run_id", "execution_id", name=op.f("pk_task_executions")),
    )
    op.create_table(
        "task_units",
        _str("run_id", nullable=False),
        _int("execution_id"),
        _int("position"),
        _int("item_index", nullable=True),
        _json("item"),
        _str("status", nullable=False, length=ENUM_LEN),
        _int("attempt"),
        _json("result"),
        _json("error"),
        _utc("started_at", nullable=True),
        _utc("finished_at", nullable=True),
        _str("timer", nullable=True),
        _str("inquiry_id", nullable=True),
        _str("child_run_id", nullable=True),
        _int("result_bytes"),
        _run_fk("task_units"),
        sa.PrimaryKeyConstraint("run_id", "execution_id", "position", name=op.f("pk_task_units")),
    )
    op.create_table(
        "attempts",
        _str("attempt_id", nullable=False),
        _str("run_id", nullable=False),
        _int("execution_id"),
        _int("position"),
        _int("attempt"),
        _str("action_ref", nullable=False),
        _str("queue", nullable=True),
        _str("status", nullable=False, length=ENUM_LEN),
        _str("worker", nullable=True),
        _utc("dispatched_at", nullable=False),
        _utc("started_at", nullable=True),
        _utc("finished_at", nullable=True),
        _utc("deadline", nullable=True),
        _json("error"),
        sa.Column("reason", sa.Text(), nullable=True),
        _run_fk("attempts"),
        sa.PrimaryKeyConstraint("attempt_id", name=op.f("pk_attempts")),
    )
    op.create_index(op.f("ix_attempts_run_id"), "attempts", ["run_id"])
    op.create_index("ix_attempts_status_deadline", "attempts", ["status", "deadline"])

    op.create_table(
        "run_events",
        _str("run_id", nullable=False),
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        _str("kind", nullable=False, length=ENUM_LEN),
        _json("payload"),
        _utc("at", nullable=False),
        _utc("recorded_at", nullable=False),
        _run_fk("run_events"),
        sa.PrimaryKeyConstraint("run_id", "seq", name=op.f("pk_run_events")),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        _str("run_id", nullable=False),
        _str("kind", nullable=False, length=ENUM_LEN),
        _json("payload"),
        _str("queue", nullable=True),
        _utc("created_at", nullable=False),
        _utc("sent_at", nullable=True),
        _int("publish_attempts"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
    )
    op.create_index(op.f("ix_outbox_run_id"), "outbox", ["run_id"])
    op.create_index("ix_outbox_sent_at_id", "outbox", ["sent_at", "id"])

    op.create_table(
        "timers",
        _str("id", nullable=False),
        _str("run_id", nullable=False),
        _str("kind", nullable=False, length=ENUM_LEN),
        _utc("fire_at", nullable=False),
        _utc("created_at", nullable=False),
        _run_fk("timers"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_timers")),
    )
    op.create_index(op.f("ix_timers_fire_at"), "timers", ["fire_at"])
    op.create_index(op.f("ix_timers_run_id"), "timers", ["run_id"])

    op.create_table(
        "inquiries",
        _str("id", nullable=False),
        _str("run_id", nullable=False),
        _str("attempt_id", nullable=False),
        _str("task", nullable=False),
        _str("status", nullable=False, length=ENUM_LEN),
        _json("prompt"),
        _json("schema"),
        _json("assigned_to"),
        _utc("deadline", nullable=True),
        _json("response"),
        _str("responder", nullable=True),
        _utc("created_at", nullable=False),
        _utc("answered_at", nullable=True),
        _run_fk("inquiries"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_inquiries")),
    )
    op.create_index(op.f("ix_inquiries_run_id"), "inquiries", ["run_id"])
    op.create_index(op.f("ix_inquiries_status"), "inquiries", ["status"])

    op.create_table(
        "keystore",
        _str("key", nullable=False),
        _json("value"),
        sa.Column("secret", sa.Boolean(), nullable=False),
        _utc("updated_at", nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_keystore")),
    )
    op.create_table(
        "events",
        _str("id", nullable=False),
        _str("type", nullable=False),
        _str("subject", nullable=True),
        _json("data"),
        _utc("received_at", nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index("ix_events_type_received_at", "events", ["type", "received_at"])


def downgrade() -> None:
    for table in (
        "events",
        "keystore",
        "inquiries",
        "timers",
        "outbox",
        "run_events",
        "attempts",
        "task_units",
        "task_executions",
        "runs",
        "actions",
        "packs",
        "definitions",
    ):
        op.drop_table(table)
