"""Outbox rows hold the core's commands, encoded by the command codec.

Before, each row had a kind of its own (``dispatch``, ``start_child`` ...) and a payload
shaped for it; the relay now decodes every row with the one command codec
(``{"kind": <command kind>, <fields>}``). Unsent rows written by the previous version are
rewritten here so an upgrade with work in the outbox loses nothing; a dispatch keeps the
queue it was routed to. Sent rows are history and stay as they were. The downgrade writes
unsent rows back in the old shapes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_OUTBOX = sa.table(
    "outbox",
    sa.column("id", sa.BigInteger),
    sa.column("run_id", sa.String),
    sa.column("kind", sa.String),
    sa.column("payload", sa.JSON(none_as_null=True)),
    sa.column("queue", sa.String),
    sa.column("sent_at", sa.DateTime(timezone=True)),
)

Row = Mapping[str, Any]
Payload = dict[str, Any]


def _dispatch(row: Row) -> Payload:
    dispatch = dict(row["payload"])
    if row["queue"] and not dispatch.get("queue"):
        dispatch["queue"] = row["queue"]
    return {"kind": "dispatch_task", "dispatch": dispatch}


def _end_to_parent(row: Row) -> Payload:
    old = row["payload"]
    return {
        "kind": "report_end_to_parent",
        "parent_attempt_id": old["parent_attempt_id"],
        "status": old["status"],
        "output": old.get("output"),
        "error": old.get("error"),
    }


def _start_child(row: Row) -> Payload:
    old = row["payload"]
    return {
        "kind": "start_child_run",
        "child_run_id": old["child_run_id"],
        "workflow": old["workflow"],
        "parameters": old.get("parameters") or {},
        "parent_attempt_id": old["parent_attempt_id"],
        "depth": old.get("depth", 1),
    }


def _child(kind: str) -> Callable[[Row], Payload]:
    return lambda row: {"kind": kind, "child_run_id": row["payload"]["child_run_id"]}


#: Old row kind -> how its payload becomes the encoded command.
_UPGRADES: Mapping[str, Callable[[Row], Payload]] = {
    "dispatch": _dispatch,
    "cancel_task": lambda row: {"kind": "cancel_task", "attempt_id": row["payload"]["attempt_id"]},
    "start_child": _start_child,
    "cancel_child": _child("cancel_child_run"),
    "pause_child": _child("pause_child_run"),
    "resume_child": _child("resume_child_run"),
    "child_paused": lambda row: {
        "kind": "report_paused_to_parent",
        "parent_run_id": row["payload"]["parent_run_id"],
    },
    "notify_parent": _end_to_parent,
}


def _downgraded(row: Row) -> tuple[str, Payload]:
    new = row["payload"]
    kind, run_id = new["kind"], row["run_id"]
    if kind == "dispatch_task":
        return "dispatch", dict(new["dispatch"])
    if kind == "cancel_task":
        return "cancel_task", {"attempt_id": new["attempt_id"], "run_id": run_id}
    if kind == "start_child_run":
        fields = ("child_run_id", "workflow", "parameters", "parent_attempt_id", "depth")
        return "start_child", {"parent_run_id": run_id, **{f: new[f] for f in fields}}
    if kind == "report_paused_to_parent":
        return "child_paused", {"child_run_id": run_id, "parent_run_id": new["parent_run_id"]}
    if kind == "report_end_to_parent":
        parent = str(new["parent_attempt_id"]).split("/", 1)[0]
        payload = {f: new.get(f) for f in ("parent_attempt_id", "status", "output", "error")}
        return "notify_parent", {"run_id": run_id, "parent_run_id": parent, **payload}
    old_kind = {"cancel_child_run": "cancel_child", "pause_child_run": "pause_child"}.get(
        kind, "resume_child"
    )
    return old_kind, {"child_run_id": new["child_run_id"], "parent_run_id": run_id}


def _unsent() -> list[Row]:
    query = sa.select(_OUTBOX).where(_OUTBOX.c.sent_at.is_(None)).order_by(_OUTBOX.c.id)
    return [dict(row) for row in op.get_bind().execute(query).mappings()]


def _rewrite(row_id: int, kind: str, payload: Payload) -> None:
    op.get_bind().execute(
        sa.update(_OUTBOX).where(_OUTBOX.c.id == row_id).values(kind=kind, payload=payload)
    )


def _encoded(row: Row) -> bool:
    """Whether the row holds an encoded command (it carries its ``kind``; no old shape did)."""
    return isinstance(row["payload"], dict) and "kind" in row["payload"]


def upgrade() -> None:
    for row in _unsent():
        convert = _UPGRADES.get(row["kind"])
        if convert is not None and not _encoded(row):
            payload = convert(row)
            _rewrite(row["id"], payload["kind"], payload)


def downgrade() -> None:
    for row in _unsent():
        if _encoded(row):
            kind, payload = _downgraded(row)
            _rewrite(row["id"], kind, payload)
