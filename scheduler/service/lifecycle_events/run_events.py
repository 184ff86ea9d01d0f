"""Writing the lifecycle events of runs and steps with the decisions that made them.

With ``TREADLE_LIFECYCLE_EVENTS`` on, :class:`~treadle.scheduler.service.runs.RunService`
hands each saved batch's decisions to :class:`RunEventWriter` inside the saving
transaction: each decision's v1 events (:func:`~treadle.scheduler.service.renderings.
workflows_v1.decision_events`, the very function that renders a stored run's history)
are rendered from the states of that decision, so an event shows the run as it was at
that moment, wrapped as CloudEvents and stored in ``lifecycle_events``, committed with
the decision or not at all. Secret values and references are masked as in the run
document. An event's id is ``<run id>/<run version>/<n>``: the run's version after the
save and the event's place in it, the same for every copy of that change.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from treadle.common.redaction import redact
from treadle.common.trace_ids import trace_id_of
from treadle.scheduler.service.definitions import Definitions, PinnedDefinition
from treadle.scheduler.service.lifecycle_events.cloudevents import (
    change_type,
    cloud_event,
    run_source,
)
from treadle.scheduler.service.lifecycle_events.decided import Decided
from treadle.scheduler.service.lifecycle_events.facts import (
    BatchFacts,
    DecisionFacts,
    DispatchMemory,
)
from treadle.scheduler.service.renderings.v1_steps import StepLayout
from treadle.scheduler.service.renderings.workflows_v1 import decision_events
from treadle.scheduler.service.run_document import run_secrets
from treadle.scheduler.store import UnitOfWork
from treadle.scheduler.store.lifecycle_repo import NewLifecycleEvent

__all__ = ["Decided", "RunEventWriter"]


class RunEventWriter:
    """Renders and stores the lifecycle events of saved decisions (see the module
    docstring). One per run service; it remembers dispatches and trigger ids between
    saves, never anything uncommitted that matters (a rolled-back dispatch is replaced
    by the one decided again, which has the same attempt or a later one)."""

    def __init__(self, definitions: Definitions) -> None:
        self._definitions = definitions
        self._memory = DispatchMemory()
        self._triggers: OrderedDict[str, str | None] = OrderedDict()
        self._layouts: dict[tuple[str, str, int], StepLayout] = {}
        #: Called once a transaction that wrote events commits (a publisher's wake-up).
        self.written: Callable[[], None] | None = None

    def record(
        self, uow: UnitOfWork, decided: Sequence[Decided], versions: Mapping[str, int]
    ) -> int:
        """Store the events of ``decided`` (in order) in ``uow``; how many there were."""
        batch = BatchFacts(
            uow, self._memory, self._triggers, (c for d in decided for c in d.commands)
        )
        triggers = batch.trigger_events({d.after.run_id for d in decided})
        numbers: dict[str, int] = {}
        rows: list[NewLifecycleEvent] = []
        for decision in decided:
            state = decision.after
            run_id = state.run_id
            pinned = self._definitions.pinned(
                state.workflow, state.definition_version, uow, workspace=state.workspace
            )
            facts = DecisionFacts(batch, state, pinned, self._layout(pinned), triggers[run_id])
            events = decision_events(facts, decision.before, state, decision.commands)
            if not events:
                continue
            secrets = run_secrets(state)
            for event in events:
                number = numbers.get(run_id, 0)
                numbers[run_id] = number + 1
                event_id = f"{run_id}/{versions[run_id]}/{number}"
                kind = change_type(event.of, event.operation)
                data: dict[str, Any] = redact(event.payload, secrets)
                rows.append(
                    NewLifecycleEvent(
                        event_id,
                        run_id,
                        kind,
                        cloud_event(
                            event_id=event_id,
                            event_type=kind,
                            source=run_source(state.workspace, run_id),
                            subject=run_id,
                            time=event.at,
                            data=data,
                            traceid=trace_id_of(run_id),
                        ),
                    )
                )
        if rows:
            uow.add_lifecycle_events(rows)
            if self.written is not None:
                uow.after_commit(self.written)
        return len(rows)

    def _layout(self, pinned: PinnedDefinition) -> StepLayout:
        key = (pinned.workspace, pinned.ref, pinned.version)
        layout = self._layouts.get(key)
        if layout is None:
            layout = self._layouts[key] = StepLayout.of(pinned)
        return layout
