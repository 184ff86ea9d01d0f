"""An upgrade with work in the outbox loses nothing: rows the previous version wrote, in
their old shapes, decode to the commands they stood for after migration 0005, and a
downgrade writes them back as they were."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import command

from treadle.common.messages import TaskDispatch
from treadle.common.statuses import RunStatus
from treadle.scheduler.core import commands as cmd
from treadle.scheduler.store.decision_codec import decode_command
from treadle.scheduler.store.migrate import alembic_config

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
DISPATCH = {
    "version": 1,
    "attempt_id": "r-1/1/0/1",
    "run_id": "r-1",
    "task": "greet",
    "execution": 1,
    "item_index": None,
    "attempt": 1,
    "action_ref": "core.echo",
    "input": {"message": "hi"},
    "timeout_seconds": None,
}
#: (run, kind, payload, queue) as version 0004 wrote them; the last one was already sent.
LEGACY: list[tuple[str, str, dict[str, Any], str | None]] = [
    ("r-1", "dispatch", DISPATCH, "gpu"),
    ("r-1", "cancel_task", {"attempt_id": "r-1/1/0/1", "run_id": "r-1"}, None),
    (
        "r-1",
        "start_child",
        {
            "child_run_id": "r-1.2.0.1",
            "workflow": "examples.child",
            "parameters": {"n": 1},
            "parent_run_id": "r-1",
            "parent_attempt_id": "r-1/2/0/1",
            "depth": 1,
        },
        None,
    ),
    ("r-1", "cancel_child", {"child_run_id": "r-1.2.0.1", "parent_run_id": "r-1"}, None),
    ("r-1", "pause_child", {"child_run_id": "r-1.2.0.1", "parent_run_id": "r-1"}, None),
    ("r-1", "resume_child", {"child_run_id": "r-1.2.0.1", "parent_run_id": "r-1"}, None),
    ("r-1.2.0.1", "child_paused", {"child_run_id": "r-1.2.0.1", "parent_run_id": "r-1"}, None),
    (
        "r-1.2.0.1",
        "notify_parent",
        {
            "run_id": "r-1.2.0.1",
            "parent_run_id": "r-1",
            "parent_attempt_id": "r-1/2/0/1",
            "status": "failed",
            "output": None,
            "error": {"type": "E", "message": "m"},
        },
        None,
    ),
]


ERROR = {"type": "E", "message": "m"}
OUTBOX = sa.table(
    "outbox",
    sa.column("id", sa.BigInteger),
    sa.column("run_id", sa.String),
    sa.column("kind", sa.String),
    sa.column("payload", sa.JSON),
    sa.column("queue", sa.String),
    sa.column("created_at", sa.DateTime(timezone=True)),
    sa.column("sent_at", sa.DateTime(timezone=True)),
    sa.column("publish_attempts", sa.Integer),
)


def _outbox(connection: sa.Connection) -> list[sa.RowMapping]:
    return list(connection.execute(sa.select(OUTBOX).order_by(OUTBOX.c.id)).mappings())


def test_unsent_rows_of_the_old_shapes_become_commands(db_url: str) -> None:
    config = alembic_config(url=db_url)
    command.downgrade(config, "base")
    command.upgrade(config, "0004")
    engine = sa.create_engine(db_url)
    rows = [
        {"run_id": r, "kind": k, "payload": p, "queue": q, "created_at": T0, "sent_at": None}
        for r, k, p, q in LEGACY
    ]
    rows.append({**rows[0], "sent_at": T0})  # history: stays as it was
    try:
        with engine.begin() as connection:
            connection.execute(OUTBOX.insert(), [{**row, "publish_attempts": 0} for row in rows])
        command.upgrade(config, "head")
        with engine.connect() as connection:
            upgraded = _outbox(connection)
        commands = [decode_command(row["payload"]) for row in upgraded[:-1]]
        assert commands == [
            cmd.DispatchTask(TaskDispatch.model_validate({**DISPATCH, "queue": "gpu"})),
            cmd.CancelTask("r-1/1/0/1"),
            cmd.StartChildRun("r-1.2.0.1", "examples.child", {"n": 1}, "r-1/2/0/1", 1),
            cmd.CancelChildRun("r-1.2.0.1"),
            cmd.PauseChildRun("r-1.2.0.1"),
            cmd.ResumeChildRun("r-1.2.0.1"),
            cmd.ReportPausedToParent("r-1"),
            cmd.ReportEndToParent(
                "r-1/2/0/1", RunStatus.FAILED, None, {"type": "E", "message": "m"}
            ),
        ]
        assert [row["kind"] for row in upgraded[:-1]] == [c.kind for c in commands]
        assert (upgraded[-1]["kind"], upgraded[-1]["payload"]) == ("dispatch", DISPATCH)

        command.downgrade(config, "0004")
        with engine.connect() as connection:
            downgraded = _outbox(connection)
        assert [(r["run_id"], r["kind"], r["payload"]) for r in downgraded[:-1]] == [
            (r, k, {**p, "queue": "gpu"} if k == "dispatch" else p) for r, k, p, _q in LEGACY
        ]
    finally:
        command.upgrade(config, "head")
        engine.dispose()
