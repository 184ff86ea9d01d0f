"""Workspaces: runs, events, keystore keys and API-made workflows belong to one.

A token acts in one workspace and sees only its objects (the HTTP API answers 404 for
another workspace's); the CLI and embedded mode act in ``default``. So:

* ``runs.workspace``: a run's workspace (child runs and triggered runs take their parent's
  or their event's). An idempotency key and a trigger event id are unique per workspace,
  and listings page by (workspace, created_at, id).
* ``definitions.workspace``: ``''`` for workflows every workspace shares (pack paths, the
  CLI, clients), a workspace's name for workflows created through the API in it; a ref's
  versions are numbered per workspace.
* ``events``: the primary key becomes (workspace, id): an event id makes a send idempotent
  within its workspace, and two workspaces never collide.
* ``keystore``: the primary key becomes (workspace, key): each workspace has its own keys.

Every existing row belongs to ``default``; definitions are shared, except those a token
published through the API, which belong to ``default``.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _workspace(default: str) -> sa.Column[str]:
    return sa.Column("workspace", sa.String(), nullable=False, server_default=default)


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch:
        batch.add_column(_workspace("default"))
        batch.drop_constraint("uq_runs_idempotency_key", type_="unique")
        batch.drop_constraint("uq_runs_trigger_event_id_workflow", type_="unique")
        batch.create_unique_constraint(
            "uq_runs_workspace_idempotency_key", ["workspace", "idempotency_key"]
        )
        batch.create_unique_constraint(
            "uq_runs_workspace_trigger_event_id_workflow",
            ["workspace", "trigger_event_id", "workflow"],
        )
        batch.create_index("ix_runs_workspace_created_at_id", ["workspace", "created_at", "id"])
    with op.batch_alter_table("definitions") as batch:
        batch.add_column(_workspace(""))
        batch.drop_constraint("uq_definitions_ref_version", type_="unique")
        batch.create_unique_constraint(
            "uq_definitions_workspace_ref_version", ["workspace", "ref", "version"]
        )
    # What a token published through the API belongs to the workspace every run so far
    # belongs to (the API could only ever start runs in it).
    op.execute("UPDATE definitions SET workspace = 'default' WHERE author LIKE 'token:%'")
    with op.batch_alter_table("events") as batch:
        batch.add_column(_workspace("default"))
        batch.drop_constraint("pk_events", type_="primary")
        batch.create_primary_key("pk_events", ["workspace", "id"])
    with op.batch_alter_table("keystore") as batch:
        batch.add_column(_workspace("default"))
        batch.drop_constraint("pk_keystore", type_="primary")
        batch.create_primary_key("pk_keystore", ["workspace", "key"])


def downgrade() -> None:
    # Two workspaces' definitions of one ref with one version number cannot both stay.
    op.execute("DELETE FROM definitions WHERE workspace NOT IN ('', 'default')")
    with op.batch_alter_table("keystore") as batch:
        batch.drop_constraint("pk_keystore", type_="primary")
        batch.create_primary_key("pk_keystore", ["key"])
        batch.drop_column("workspace")
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint("pk_events", type_="primary")
        batch.create_primary_key("pk_events", ["id"])
        batch.drop_column("workspace")
    with op.batch_alter_table("definitions") as batch:
        batch.drop_constraint("uq_definitions_workspace_ref_version", type_="unique")
        batch.create_unique_constraint("uq_definitions_ref_version", ["ref", "version"])
        batch.drop_column("workspace")
    with op.batch_alter_table("runs") as batch:
        batch.drop_index("ix_runs_workspace_created_at_id")
        batch.drop_constraint("uq_runs_workspace_trigger_event_id_workflow", type_="unique")
        batch.drop_constraint("uq_runs_workspace_idempotency_key", type_="unique")
        batch.create_unique_constraint(
            "uq_runs_trigger_event_id_workflow", ["trigger_event_id", "workflow"]
        )
        batch.create_unique_constraint("uq_runs_idempotency_key", ["idempotency_key"])
        batch.drop_column("workspace")
