"""What rendering a decision's lifecycle events reads besides the run's states.

The v1 renderings (:mod:`~treadle.scheduler.service.renderings.v1_steps`) show a step's
input (what its first unit was dispatched with), the question its inquiry asked and the
event that started the run. Replaying the run's event log would give all of it, but costs
the whole history at every decision; here each comes from what is at hand:

* a dispatch from the commands of the batch being saved, else from
  :class:`DispatchMemory` (the latest first-unit dispatch of each execution this process
  saw decided), checked against the attempt the state says is the latest, else from the
  run's dispatches in the outbox (read once per run and batch: after a restart, or when
  another scheduler decided it);
* a question's prompt from the batch's commands, else from its inquiry row;
* the trigger event's id from the run row (once per run: it never changes).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select

from treadle.common.messages import TaskDispatch
from treadle.scheduler.core.commands import Command, DispatchTask, OpenInquiry
from treadle.scheduler.core.ids import parse_attempt_id
from treadle.scheduler.core.state import RunState
from treadle.scheduler.service.definitions import PinnedDefinition
from treadle.scheduler.service.renderings.v1_steps import StepLayout
from treadle.scheduler.store import UnitOfWork
from treadle.scheduler.store.decision_codec import decode_command
from treadle.scheduler.store.errors import CodecError
from treadle.scheduler.store.models import inquiries, outbox, runs

__all__ = ["BatchFacts", "DecisionFacts", "DispatchMemory"]

#: How many runs' dispatches (by execution) and trigger ids a process remembers.
REMEMBERED = 10_000


class DispatchMemory:
    """The latest dispatch of each execution's first unit this process saw, by (run,
    execution); the oldest are forgotten beyond ``size``."""

    def __init__(self, size: int = REMEMBERED) -> None:
        self._size = size
        self._latest: OrderedDict[tuple[str, int], TaskDispatch] = OrderedDict()

    def note(self, dispatch: TaskDispatch) -> None:
        ref = parse_attempt_id(dispatch.attempt_id)
        if ref is None or ref.position != 0:
            return
        key = (dispatch.run_id, dispatch.execution)
        known = self._latest.get(key)
        if known is not None and known.attempt > dispatch.attempt:
            return
        self._latest[key] = dispatch
        self._latest.move_to_end(key)
        while len(self._latest) > self._size:
            self._latest.popitem(last=False)

    def get(self, run_id: str, execution: int) -> TaskDispatch | None:
        return self._latest.get((run_id, execution))


class BatchFacts:
    """The dispatches, prompts and trigger ids the decisions of one save read (``uow`` is
    the saving transaction)."""

    def __init__(
        self,
        uow: UnitOfWork,
        memory: DispatchMemory,
        triggers: OrderedDict[str, str | None],
        commands: Iterable[Command],
    ) -> None:
        self._uow = uow
        self._memory = memory
        self._triggers = triggers
        self._prompts: dict[str, Any] = {}
        self._read_outbox: set[str] = set()
        for command in commands:
            if isinstance(command, DispatchTask):
                memory.note(command.dispatch)
            elif isinstance(command, OpenInquiry):
                self._prompts[command.inquiry_id] = command.prompt

    def first_dispatch(self, state: RunState, execution: int) -> TaskDispatch | None:
        """The latest dispatch of the first unit of ``execution`` as of ``state``."""
        found = state.executions.get(execution)
        if found is None or not found.units or found.units[0].attempt == 0:
            return None  # never dispatched (or not a dispatched kind of task)
        known = self._memory.get(state.run_id, execution)
        if known is not None and known.attempt == found.units[0].attempt:
            return known
        if state.run_id not in self._read_outbox:
            self._read_outbox.add(state.run_id)
            for dispatch in self._stored_dispatches(state.run_id):
                self._memory.note(dispatch)
        return self._memory.get(state.run_id, execution)

    def question_prompt(self, inquiry_id: str) -> Any:
        if inquiry_id not in self._prompts:
            self._prompts[inquiry_id] = self._uow.connection.execute(
                select(inquiries.c.prompt).where(inquiries.c.id == inquiry_id)
            ).scalar_one_or_none()
        return self._prompts[inquiry_id]

    def trigger_events(self, run_ids: Iterable[str]) -> Mapping[str, str | None]:
        """The id of the event that started each run (None: no event did)."""
        wanted = set(run_ids)
        missing = sorted(wanted - set(self._triggers))
        if missing:
            rows = self._uow.connection.execute(
                select(runs.c.id, runs.c.trigger_event_id).where(runs.c.id.in_(missing))
            ).all()
            for run_id, trigger in rows:
                self._triggers[str(run_id)] = None if trigger is None else str(trigger)
            while len(self._triggers) > REMEMBERED:
                self._triggers.popitem(last=False)
        return {run_id: self._triggers.get(run_id) for run_id in wanted}

    def _stored_dispatches(self, run_id: str) -> Iterable[TaskDispatch]:
        payloads = self._uow.connection.execute(
            select(outbox.c.payload)
            .where(outbox.c.run_id == run_id, outbox.c.kind == DispatchTask.kind)
            .order_by(outbox.c.id)
        ).scalars()
        for payload in payloads:
            try:
                command = decode_command(payload)
            except CodecError:
                continue
            if isinstance(command, DispatchTask):
                yield command.dispatch


class DecisionFacts:
    """:class:`~treadle.scheduler.service.renderings.v1_steps.RunFacts` of one run in one
    save, for rendering the events of its decisions."""

    def __init__(
        self,
        batch: BatchFacts,
        state: RunState,
        pinned: PinnedDefinition,
        layout: StepLayout,
        trigger_event_id: str | None,
    ) -> None:
        self._batch = batch
        self._state = state
        self._pinned = pinned
        self._layout = layout
        self._trigger_event_id = trigger_event_id

    @property
    def pinned(self) -> PinnedDefinition:
        return self._pinned

    @property
    def trigger_event_id(self) -> str | None:
        return self._trigger_event_id

    @property
    def layout(self) -> StepLayout:
        return self._layout

    def first_dispatch(self, execution: int) -> TaskDispatch | None:
        return self._batch.first_dispatch(self._state, execution)

    def question_prompt(self, inquiry_id: str) -> Any:
        return self._batch.question_prompt(inquiry_id)
