"""A stored run with everything the renderings need, and its event log replayed.

The run document shows where a run *is*; the dialect renderings also need what it *did*:
the input each attempt was given, the question each inquiry asked, and the run as it was
at each lifecycle event. None of that is stored as such, and none of it needs to be: the
event log replayed through ``decide`` (against the definition version the run is pinned
to) gives back every decision with the state after it. That is the determinism the core
guarantees, so the replay is also checked against the stored state where it matters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any

from sqlalchemy import select

from treadle.common.catalog import Catalog
from treadle.common.messages import TaskDispatch
from treadle.scheduler.core.commands import Command, DispatchTask, OpenInquiry
from treadle.scheduler.core.decide import decide
from treadle.scheduler.core.events import Event
from treadle.scheduler.core.state import RunState, initial_state
from treadle.scheduler.service.definitions import Definitions, PinnedDefinition
from treadle.scheduler.service.renderings.v1_steps import StepLayout
from treadle.scheduler.store import InquiryEntry, RecordedEvent, Store, UnitOfWork
from treadle.scheduler.store.models import runs


@dataclass(frozen=True)
class RecordedDecision:
    """One event of the log, when it was decided, the state after it and its commands."""

    seq: int
    event: Event
    at: datetime
    state: RunState
    commands: tuple[Command, ...]


@dataclass(frozen=True)
class StoredRun:
    """A run as stored: its state, pinned definition, event log, inquiries and trigger."""

    state: RunState
    pinned: PinnedDefinition
    events: tuple[RecordedEvent, ...]
    inquiries: tuple[InquiryEntry, ...] = ()
    trigger_event_id: str | None = None

    @cached_property
    def decisions(self) -> tuple[RecordedDecision, ...]:
        """The event log replayed through ``decide``, one :class:`RecordedDecision` per event."""
        state = initial_state(
            self.state.run_id,
            self.state.workflow,
            self.state.created_at or self._first_at(),
            self.state.definition_version,
        )
        out: list[RecordedDecision] = []
        for recorded in self.events:
            decision = decide(state, recorded.event, self.pinned.graph, recorded.at)
            state = decision.state
            out.append(
                RecordedDecision(
                    recorded.seq, recorded.event, recorded.at, state, decision.commands
                )
            )
        return tuple(out)

    @cached_property
    def dispatches(self) -> Mapping[tuple[int, int], DispatchTask]:
        """The latest dispatch of each unit, by (execution, unit position)."""
        found: dict[tuple[int, int], DispatchTask] = {}
        for decision in self.decisions:
            for command in decision.commands:
                if isinstance(command, DispatchTask):
                    dispatch = command.dispatch
                    position = _position(dispatch.attempt_id)
                    found[(dispatch.execution, position)] = command
        return found

    @cached_property
    def questions(self) -> Mapping[str, OpenInquiry]:
        """Every inquiry the run opened, by inquiry id."""
        return {
            command.inquiry_id: command
            for decision in self.decisions
            for command in decision.commands
            if isinstance(command, OpenInquiry)
        }

    @cached_property
    def layout(self) -> StepLayout:
        """The definition's steps as the v1 renderings show them."""
        return StepLayout.of(self.pinned)

    def first_dispatch(self, execution: int) -> TaskDispatch | None:
        """The latest dispatch of the first unit of ``execution``."""
        command = self.dispatches.get((execution, 0))
        return None if command is None else command.dispatch

    def question_prompt(self, inquiry_id: str) -> Any:
        """The prompt of the inquiry ``inquiry_id`` (None if the run never opened it)."""
        question = self.questions.get(inquiry_id)
        return None if question is None else question.prompt

    def first_input(self, execution: int) -> dict[str, Any] | None:
        """The input of the first unit of ``execution`` (its latest attempt)."""
        command = self.dispatches.get((execution, 0))
        return None if command is None else dict(command.dispatch.input)

    def _first_at(self) -> datetime:
        return self.events[0].at if self.events else datetime.min


def load_stored_run(store: Store, run_id: str, definitions: Definitions | None = None) -> StoredRun:
    """Read ``run_id`` (raises ``NotFound``) with its pinned definition and event log."""
    definitions = definitions or Definitions(store, Catalog())
    with store.snapshot() as uow:
        state = uow.load_run(run_id)
        events = tuple(uow.list_events(run_id))
        inquiries = tuple(uow.list_inquiries(run_id=run_id))
        trigger = trigger_event_of(uow, run_id)
        pinned = definitions.pinned(
            state.workflow, state.definition_version, uow, workspace=state.workspace
        )
    return StoredRun(state, pinned, events, inquiries, trigger)


def trigger_event_of(uow: UnitOfWork, run_id: str) -> str | None:
    """The id of the event that started ``run_id``, if an event trigger started it."""
    value = uow.connection.execute(
        select(runs.c.trigger_event_id).where(runs.c.id == run_id)
    ).scalar_one_or_none()
    return None if value is None else str(value)


def _position(attempt_id: str) -> int:
    return int(attempt_id.rsplit("/", 3)[2])
