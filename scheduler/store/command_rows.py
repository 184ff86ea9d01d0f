"""The rows a batch of commands writes, collected and written in the transaction of the save.

This is the transactional outbox: a dispatch, a timer or an inquiry exists if and only if
the state that asked for it was saved, so a crash can neither lose a command nor apply it
twice. Which rows a command writes is decided by its handler (``scheduler/service/
commands``), found by the command's type; the handler calls the typed methods of
:class:`CommandRows`, which collect rows per table and write each table in one statement.
Commands for another process (or for the relay) are stored whole in ``outbox``, encoded by
the one command codec, and decoded once, by the relay.

Held rows: a scheduler publishes the commands that leave the process (dispatches,
cancellations) itself, right after the transaction commits, rather than in a relay pass.
Given ``hold_for``, those rows are written with ``held_until`` = now + ``hold_for`` (relays
skip them until then) and come back from :meth:`CommandRows.flush` as
:class:`HeldCommand` (outbox id and the command as decided, never decoded). If the writer
dies before it publishes and marks them sent, a relay takes them when the hold ends.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, delete, or_, text, update

from treadle.common.messages import TaskDispatch
from treadle.common.statuses import AttemptStatus, InquiryStatus
from treadle.scheduler.core import commands as cmd
from treadle.scheduler.core.ids import parse_attempt_id, unit_timer_id
from treadle.scheduler.core.state import RunState, TimerKind
from treadle.scheduler.store.base import Repository, chunks
from treadle.scheduler.store.bulk import bulk_insert, in_order, ordered_insert, queue_replace
from treadle.scheduler.store.codec import encode_value
from treadle.scheduler.store.decision_codec import encode_command
from treadle.scheduler.store.flow_repo import HELD_TIMER_AT, FlowGate, held_columns
from treadle.scheduler.store.models import attempts, event_waits, inquiries, outbox, timers
from treadle.scheduler.store.queue_repo import OUTBOX_CHANNEL
from treadle.scheduler.store.write_batch import WriteBatch

# Executed with many parameter sets at once, so no ``IN`` (an expanding parameter, which
# executemany refuses): the open statuses are spelt out.
_CANCEL_ATTEMPT = (
    update(attempts)
    .where(
        attempts.c.attempt_id == bindparam("k_attempt_id"),
        or_(
            attempts.c.status == AttemptStatus.QUEUED.value,
            attempts.c.status == AttemptStatus.RUNNING.value,
        ),
    )
    .values(status=AttemptStatus.CANCELED.value, finished_at=bindparam("finished_at"))
)
_CLOSE_INQUIRY = (
    update(inquiries).where(inquiries.c.id == bindparam("k_id")).values(status=bindparam("status"))
)


#: Wakes listening schedulers at commit, riding on the outbox insert's ``WHERE``.
_OUTBOX_NOTICE = f"(SELECT pg_notify('{OUTBOX_CHANNEL}', '')) IS NOT NULL"
_NOTIFY_OUTBOX = text(f"NOTIFY {OUTBOX_CHANNEL}")


@dataclass(frozen=True)
class HeldCommand:
    """An outbox row its writer publishes itself after commit: the row and its command."""

    outbox_id: int
    run_id: str
    command: cmd.Command


class CommandRowWriter(Protocol):
    """Turns one run's commands into rows (the service's command handlers do)."""

    def __call__(self, rows: CommandRows, commands: Sequence[cmd.Command]) -> None: ...


class CommandRows(Repository):
    """Collects the rows of a batch of runs' commands; :meth:`flush` writes each table once.

    :meth:`for_run` sets the run (and the time) the following rows belong to.
    """

    def __init__(
        self,
        connection: Connection,
        clock: Callable[[], datetime],
        *,
        hold_for: timedelta | None = None,
        writes: WriteBatch | None = None,
        notify_outbox: bool = False,
    ) -> None:
        super().__init__(connection, clock)
        #: The save's other writes (PostgreSQL), sent by :meth:`flush` with the attempts.
        self._writes = writes
        #: Whether writing outbox rows wakes the schedulers (PostgreSQL ``NOTIFY`` at
        #: commit): a client that starts a run writes its first dispatches to the outbox,
        #: and a listening scheduler relays them at once instead of at its next poll.
        self._notify_outbox = notify_outbox
        self._state: RunState | None = None
        self.now = clock()
        self._hold_for = hold_for
        self._outbox: list[dict[str, Any]] = []
        self._held: list[tuple[int, cmd.Command]] = []  # (position in _outbox, command)
        #: Dispatches with flow-control claims: (position in _outbox, command, workspace).
        self._claimed: list[tuple[int, cmd.DispatchTask, str]] = []
        #: After :meth:`flush`: the held rows, to publish once the transaction commits.
        self.held: list[HeldCommand] = []
        #: After :meth:`flush`: the kind (concurrency, rate) of the claim each dispatch held
        #: back by flow control waits on.
        self.flow_waits: list[str] = []
        self._attempts: list[dict[str, Any]] = []
        self._canceled: list[dict[str, Any]] = []
        self._timers: dict[str, dict[str, Any] | None] = {}
        self._waits: dict[str, dict[str, Any] | None] = {}
        self._inquiries: list[dict[str, Any]] = []
        self._closed: list[dict[str, Any]] = []
        self._positions: dict[int, dict[int | None, int]] = {}

    @property
    def state(self) -> RunState:
        """The saved state of the run whose commands are being written."""
        if self._state is None:
            raise RuntimeError("call for_run() before adding a run's rows")
        return self._state

    @property
    def run_id(self) -> str:
        return self.state.run_id

    def for_run(self, state: RunState, now: datetime) -> None:
        """The rows added next belong to the run saved as ``state``, decided at ``now``."""
        self._state = state
        self.now = now
        self._positions = {}

    # --- rows -------------------------------------------------------------------------------

    def outbox(
        self, command: cmd.Command, queue: str | None = None, *, outgoing: bool = False
    ) -> None:
        """Store ``command`` for the relay (``queue``: where a dispatch goes, for operators).

        ``outgoing``: the command leaves the process (a dispatch, a cancellation); with a
        hold, its row is held for the writer to publish itself after commit.
        """
        held_until = None
        if outgoing and self._hold_for is not None:
            held_until = self.now + self._hold_for
            self._held.append((len(self._outbox), command))
        self._outbox.append(
            {
                "run_id": self.run_id,
                "kind": command.kind,
                "payload": encode_command(command),
                "queue": queue,
                "created_at": self.now,
                "sent_at": None,
                "publish_attempts": 0,
                "held_until": held_until,
            }
        )
        if isinstance(command, cmd.DispatchTask) and command.claims:
            self._claimed.append((len(self._outbox) - 1, command, self.state.workspace))

    def attempt_dispatched(self, dispatch: TaskDispatch, queue: str) -> None:
        """A queued attempt row for ``dispatch`` (its deadline from the task's timeout)."""
        deadline = (
            None
            if dispatch.timeout_seconds is None
            else self.now + timedelta(seconds=dispatch.timeout_seconds)
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
                "dispatched_at": self.now,
                "started_at": None,
                "finished_at": None,
                "deadline": deadline,
                "error": None,
            }
        )

    def attempt_canceled(self, attempt_id: str) -> None:
        """Close the attempt's row as canceled, if it is still open."""
        self._canceled.append({"k_attempt_id": attempt_id, "finished_at": self.now})

    def timer(self, timer_id: str, kind: TimerKind, fire_at: datetime) -> None:
        self._timers[timer_id] = {
            "id": timer_id,
            "run_id": self.run_id,
            "kind": kind.value,
            "fire_at": fire_at,
            "created_at": self.now,
        }

    def timer_dropped(self, timer_id: str) -> None:
        self._timers[timer_id] = None

    def event_wait(
        self, wait_id: str, event_type: str, subject: str | None, deadline: datetime | None
    ) -> None:
        self._waits[wait_id] = {
            "wait_id": wait_id,
            "run_id": self.run_id,
            "event_type": event_type,
            "subject": subject,
            "deadline": deadline,
            "created_at": self.now,
        }

    def event_wait_dropped(self, wait_id: str) -> None:
        self._waits[wait_id] = None

    def inquiry(self, command: cmd.OpenInquiry) -> None:
        self._inquiries.append(
            {
                "id": command.inquiry_id,
                "run_id": self.run_id,
                "attempt_id": command.attempt_id,
                "task": command.task or None,
                "status": InquiryStatus.PENDING.value,
                "purpose": command.purpose.value,
                "prompt": encode_value(command.prompt),
                "schema": encode_value(command.schema),
                "assigned_to": encode_value(command.assigned_to),
                "deadline": command.deadline,
                "created_at": self.now,
            }
        )

    def inquiry_closed(self, inquiry_id: str, status: InquiryStatus) -> None:
        self._closed.append({"k_id": inquiry_id, "status": status.value})

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
            execution = self.state.executions.get(execution_id)
            units = () if execution is None else execution.units
            positions = {unit.index: position for position, unit in enumerate(units)}
            self._positions[execution_id] = positions
        position = positions.get(item_index)
        if position is not None:
            return position
        return 0 if item_index is None else item_index

    # --- writing ----------------------------------------------------------------------------

    @property
    def wrote_outbox(self) -> bool:
        """Whether any command of the batch went to the outbox (a relay has work)."""
        return bool(self._outbox)

    def flush(self) -> None:
        """Write every collected row: one statement per table (the attempts first, so the
        flow gate counts this batch's holders). The save's writes queued in ``writes``
        go first, with the attempts and the outbox rows when no flow gate needs to read
        the attempts in between."""
        if self._writes is not None and not self._claimed:
            queue_replace(self._writes, self._conn, attempts, ("attempt_id",), self._attempts)
            self._write_outbox(self._writes)
        else:
            if self._writes is not None:
                self._writes.execute(self._conn)
            self._upsert(attempts, self._attempts, ("attempt_id",))
            if self._claimed:
                self._gate()
            self._write_outbox(None)
        if self._canceled:
            self._conn.execute(_CANCEL_ATTEMPT, self._canceled)
        self._write_keyed(event_waits, "wait_id", self._waits)
        self._write_keyed(timers, "id", self._timers)
        self._insert(inquiries, self._inquiries)
        if self._closed:
            self._conn.execute(_CLOSE_INQUIRY, self._closed)

    def _write_outbox(self, writes: WriteBatch | None) -> None:
        """Insert the outbox rows, with ``writes`` (sent now, the rows last) when given;
        the held rows' ids are kept for :attr:`held`. With ``notify_outbox``, new rows
        wake the schedulers: the notice rides on their insert where it can."""
        notice = self._notify_outbox and bool(self._outbox) and self._postgres
        if not self._held:
            rides = notice and writes is not None
            condition = _OUTBOX_NOTICE if rides else ""
            bulk_insert(self._conn, outbox, self._outbox, writes=writes, condition=condition)
            if writes is not None:
                writes.execute(self._conn)
            if notice and not rides:
                self._conn.execute(_NOTIFY_OUTBOX)
            return
        if notice:
            self._conn.execute(_NOTIFY_OUTBOX)
        if writes is None:
            inserted = self._conn.execute(
                outbox.insert().returning(outbox.c.id, sort_by_parameter_order=True),
                self._outbox,
            )
            ids = list(inserted.scalars().all())
        else:
            then = ordered_insert(self._conn, outbox, self._outbox, "id")
            result = writes.execute(self._conn, then=then)
            assert result is not None  # the insert itself was sent
            ids = in_order(result.scalars().all())
        self.held = [
            HeldCommand(ids[position], self._outbox[position]["run_id"], command)
            for position, command in self._held
        ]

    def _gate(self) -> None:
        """Grant each claimed dispatch its slots and grants (highest priority first), or
        hold its row back: relays skip it and the writer does not publish it."""
        gate = FlowGate(self._conn)
        held_back: set[int] = set()
        for position, command, workspace in sorted(
            self._claimed, key=lambda entry: (-entry[1].priority, entry[0])
        ):
            row = self._outbox[position]
            dispatch = command.dispatch
            held = gate.admit(
                workspace, dispatch.run_id, dispatch.attempt_id, command.claims, row["created_at"]
            )
            if held is not None:
                row.update(held_columns(held, workspace, dispatch.attempt_id, row["created_at"]))
                row["priority"] = command.priority
                held_back.add(position)
                self.flow_waits.append(held.claim.kind.value)
                self._stop_the_clock(dispatch)
        if not held_back:
            return
        self._held = [(p, c) for p, c in self._held if p not in held_back]
        columns = {name for row in self._outbox for name in row}
        for row in self._outbox:  # one statement needs the same columns in every row
            for name in columns - row.keys():
                row[name] = None

    def _stop_the_clock(self, dispatch: TaskDispatch) -> None:
        """A held attempt's timeout does not run while it waits: its timer and deadline are
        set when it is released (``FlowRepository.release_held``)."""
        ref = parse_attempt_id(dispatch.attempt_id)
        if ref is not None:
            timer = unit_timer_id(
                TimerKind.TIMEOUT, ref.run_id, ref.execution, ref.position, ref.attempt
            )
            row = self._timers.get(timer)
            if row is not None:
                row["fire_at"] = HELD_TIMER_AT
        self._conn.execute(
            update(attempts)
            .where(attempts.c.attempt_id == dispatch.attempt_id)
            .values(deadline=None)
        )

    def _write_keyed(
        self, table: Any, key: str, rows: Mapping[str, Mapping[str, Any] | None]
    ) -> None:
        """Upsert the rows kept by key; delete the keys whose row is ``None``."""
        kept = [dict(row) for row in rows.values() if row is not None]
        self._upsert(table, kept, (key,))
        dropped = [name for name, row in rows.items() if row is None]
        column = table.c[key]
        for ids in chunks(dropped):
            self._conn.execute(delete(table).where(column.in_(ids)))
