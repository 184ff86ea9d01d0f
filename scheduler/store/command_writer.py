"""Turns the core's commands into rows, in the transaction that saves the state they came from.

This is the transactional outbox: a dispatch, a timer or an inquiry exists if and only if
the state that asked for it was saved, so a crash can neither lose a command nor apply it
twice. Messages to other processes (dispatch, cancel, child runs, parent notification) go
to ``outbox`` for the relay; timers, inquiries and attempts get rows of their own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, delete, update

from treadle.common.messages import TaskDispatch
from treadle.common.statuses import AttemptStatus, InquiryStatus
from treadle.scheduler.core import commands as cmd
from treadle.scheduler.core.ids import parse_attempt_id
from treadle.scheduler.core.state import RunState
from treadle.scheduler.store.base import Repository, chunks
from treadle.scheduler.store.codec import encode_value
from treadle.scheduler.store.entries import (
    OUTBOX_CANCEL_CHILD,
    OUTBOX_CANCEL_TASK,
    OUTBOX_CHILD_PAUSED,
    OUTBOX_DISPATCH,
    OUTBOX_NOTIFY_PARENT,
    OUTBOX_PAUSE_CHILD,
    OUTBOX_RESUME_CHILD,
    OUTBOX_START_CHILD,
)
from treadle.scheduler.store.errors import CodecError
from treadle.scheduler.store.models import attempts, event_waits, inquiries, outbox, timers

QueueFor = Callable[[cmd.DispatchTask], str]
DEFAULT_QUEUE = "treadle.tasks"


def default_queue_for(_command: cmd.DispatchTask) -> str:
    return DEFAULT_QUEUE


_OPEN_ATTEMPT = (AttemptStatus.QUEUED.value, AttemptStatus.RUNNING.value)

_CANCEL_ATTEMPT = (
    update(attempts)
    .where(
        attempts.c.attempt_id == bindparam("k_attempt_id"),
        attempts.c.status.in_(_OPEN_ATTEMPT),
    )
    .values(status=AttemptStatus.CANCELED.value, finished_at=bindparam("finished_at"))
)
_CLOSE_INQUIRY = (
    update(inquiries).where(inquiries.c.id == bindparam("k_id")).values(status=bindparam("status"))
)


class CommandWriter(Repository):
    """Collects the rows for a batch of commands and writes each table in one statement."""

    def __init__(
        self,
        connection: Connection,
        clock: Callable[[], datetime],
        queue_for: QueueFor,
    ) -> None:
        super().__init__(connection, clock)
        self._state: RunState | None = None
        self._now = clock()
        self._queue_for = queue_for
        self._outbox: list[dict[str, Any]] = []
        self._attempts: list[dict[str, Any]] = []
        self._canceled: list[dict[str, Any]] = []
        self._timers: dict[str, dict[str, Any] | None] = {}
        self._waits: dict[str, dict[str, Any] | None] = {}
        self._inquiries: list[dict[str, Any]] = []
        self._closed: list[dict[str, Any]] = []
        self._positions: dict[int, dict[int | None, int]] = {}

    @property
    def _current(self) -> RunState:
        if self._state is None:
            raise RuntimeError("add() a run's commands before writing them")
        return self._state

    def add(self, state: RunState, now: datetime, commands: Sequence[cmd.Command]) -> None:
        """Collect the rows for ``commands`` of the run saved as ``state`` at ``now``."""
        self._state = state
        self._now = now
        self._positions = {}
        for command in commands:
            self._collect(command)

    def write(self, commands: Sequence[cmd.Command], state: RunState, now: datetime) -> None:
        """Collect and write the rows of one run's commands."""
        self.add(state, now, commands)
        self.flush()

    def flush(self) -> None:
        """Write every collected row: one statement per table."""
        self._flush()

    # --- collecting ---------------------------------------------------------------------

    def _collect(self, command: cmd.Command) -> None:
        run_id = self._current.run_id
        match command:
            case cmd.DispatchTask():
                self._dispatch(command)
            case cmd.CancelTask(attempt_id=attempt_id):
                self._message(OUTBOX_CANCEL_TASK, {"attempt_id": attempt_id, "run_id": run_id})
                self._canceled.append({"k_attempt_id": attempt_id, "finished_at": self._now})
            case cmd.StartChildRun():
                self._message(
                    OUTBOX_START_CHILD,
                    {
                        "child_run_id": command.child_run_id,
                        "workflow": command.workflow,
                        "parameters": encode_value(command.parameters),
                        "parent_run_id": run_id,
                        "parent_attempt_id": command.parent_attempt_id,
                        "depth": command.depth,
                    },
                )
            case cmd.CancelChildRun(child_run_id=child_run_id):
                self._message(
                    OUTBOX_CANCEL_CHILD, {"child_run_id": child_run_id, "parent_run_id": run_id}
                )
            case cmd.ScheduleTimer():
                self._timers[command.timer_id] = {
                    "id": command.timer_id,
                    "run_id": run_id,
                    "kind": command.timer_kind.value,
                    "fire_at": command.fire_at,
                    "created_at": self._now,
                }
            case cmd.CancelTimer(timer_id=timer_id):
                self._timers[timer_id] = None
            case cmd.OpenInquiry():
                self._inquiries.append(
                    {
                        "id": command.inquiry_id,
                        "run_id": run_id,
                        "attempt_id": command.attempt_id,
                        "task": command.task,
                        "status": InquiryStatus.PENDING.value,
                        "prompt": encode_value(command.prompt),
                        "schema": encode_value(command.schema),
                        "assigned_to": encode_value(command.assigned_to),
                        "deadline": command.deadline,
                        "created_at": self._now,
                    }
                )
            case cmd.CloseInquiry(inquiry_id=inquiry_id, status=status):
                self._closed.append({"k_id": inquiry_id, "status": status.value})
            case cmd.CompleteRun():
                if command.parent_attempt_id is not None:
                    self._notify_parent(command)
            case cmd.EmitLifecycleEvent() | cmd.RunStatusChanged():
                pass  # observed by listeners of the run service; nothing to persist
            case cmd.AwaitEvent():
                self._waits[command.wait_id] = {
                    "wait_id": command.wait_id,
                    "run_id": run_id,
                    "event_type": command.event_type,
                    "subject": command.subject,
                    "deadline": command.deadline,
                    "created_at": self._now,
                }
            case cmd.StopAwaitingEvent(wait_id=wait_id):
                self._waits[wait_id] = None
            case cmd.PauseChildRun(child_run_id=child_run_id):
                self._message(
                    OUTBOX_PAUSE_CHILD, {"child_run_id": child_run_id, "parent_run_id": run_id}
                )
            case cmd.ReportPausedToParent(parent_run_id=parent_run_id):
                self._message(
                    OUTBOX_CHILD_PAUSED, {"child_run_id": run_id, "parent_run_id": parent_run_id}
                )
            case cmd.ResumeChildRun(child_run_id=child_run_id):
                self._message(
                    OUTBOX_RESUME_CHILD, {"child_run_id": child_run_id, "parent_run_id": run_id}
                )
            case _:
                raise CodecError(f"the store cannot persist command {command.kind!r}")

    def _message(self, kind: str, payload: Mapping[str, Any], queue: str | None = None) -> None:
        self._outbox.append(
            {
                "run_id": self._current.run_id,
                "kind": kind,
                "payload": dict(payload),
                "queue": queue,
                "created_at": self._now,
                "sent_at": None,
                "publish_attempts": 0,
            }
        )

    def _dispatch(self, command: cmd.DispatchTask) -> None:
        dispatch = command.dispatch
        queue = command.queue or self._queue_for(command)
        self._message(OUTBOX_DISPATCH, dispatch.model_dump(mode="json"), queue)
        deadline = (
            None
            if dispatch.timeout_seconds is None
            else self._now + timedelta(seconds=dispatch.timeout_seconds)
        )
        self._attempts.append(
            {
                "attempt_id": dispatch.attempt_id,
                "run_id": dispatch.run_id,
                "execution_id": dispatch.execution,
                "position": self._position(dispatch),
                "attempt": dispatch.attempt,
                "action_ref": dispatch.action_ref,
                "queue": queue,
                "status": AttemptStatus.QUEUED.value,
                "worker": None,
                "dispatched_at": self._now,
                "started_at": None,
                "finished_at": None,
                "deadline": deadline,
                "error": None,
            }
        )

    def _position(self, dispatch: TaskDispatch) -> int:
        """The position in ``Execution.units`` of the unit the dispatch runs.

        The core's attempt ids carry it (``run/execution/position/attempt``); otherwise the
        unit is looked up by its item index.
        """
        ref = parse_attempt_id(dispatch.attempt_id)
        if ref and (ref.run_id, ref.execution) == (dispatch.run_id, dispatch.execution):
            return ref.position
        execution_id, item_index = dispatch.execution, dispatch.item_index
        positions = self._positions.get(execution_id)
        if positions is None:
            execution = self._current.executions.get(execution_id)
            units = () if execution is None else execution.units
            positions = {unit.index: position for position, unit in enumerate(units)}
            self._positions[execution_id] = positions
        position = positions.get(item_index)
        if position is not None:
            return position
        return 0 if item_index is None else item_index

    def _notify_parent(self, command: cmd.CompleteRun) -> None:
        payload: dict[str, Any] = {
            "run_id": self._current.run_id,
            "parent_run_id": self._current.context.parent_run_id,
            "parent_attempt_id": command.parent_attempt_id,
            "status": command.status.value,
            "output": encode_value(command.output),
            "error": encode_value(command.error),
        }
        if command.extra:
            payload["extra"] = encode_value(command.extra)
        self._message(OUTBOX_NOTIFY_PARENT, payload)

    # --- writing ------------------------------------------------------------------------

    def _flush(self) -> None:
        self._insert(outbox, self._outbox)
        self._upsert(attempts, self._attempts, ("attempt_id",))
        if self._canceled:
            self._conn.execute(_CANCEL_ATTEMPT, self._canceled)
        awaited = [row for row in self._waits.values() if row is not None]
        self._upsert(event_waits, awaited, ("wait_id",))
        released = [wait_id for wait_id, row in self._waits.items() if row is None]
        for ids in chunks(released):
            self._conn.execute(delete(event_waits).where(event_waits.c.wait_id.in_(ids)))
        scheduled = [row for row in self._timers.values() if row is not None]
        self._upsert(timers, scheduled, ("id",))
        dropped = [timer_id for timer_id, row in self._timers.items() if row is None]
        for ids in chunks(dropped):
            self._conn.execute(delete(timers).where(timers.c.id.in_(ids)))
        self._insert(inquiries, self._inquiries)
        if self._closed:
            self._conn.execute(_CLOSE_INQUIRY, self._closed)
