"""A run as ``decide`` made it: every event, when, the state after it and its commands.

Both sides of a replay against another version are one of these: the recorded run
replayed on its own definition, and the same results fed to the new one. Pure.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from treadle.common.graph import Graph
from treadle.scheduler.core.commands import Command
from treadle.scheduler.core.decide import decide
from treadle.scheduler.core.events import Event
from treadle.scheduler.core.state import RunState, initial_state


@dataclass(frozen=True)
class Decided:
    """One event, when the core was told, the state before and after, and the commands."""

    event: Event
    at: datetime
    before: RunState
    after: RunState
    commands: tuple[Command, ...]


@dataclass
class RunLog:
    """The decisions of one run, in order, from its created state."""

    created: RunState
    decided: list[Decided] = field(default_factory=list)

    @property
    def state(self) -> RunState:
        return self.decided[-1].after if self.decided else self.created

    def apply(self, graph: Graph, event: Event, at: datetime) -> Decided:
        before = self.state
        decision = decide(before, event, graph, at)
        entry = Decided(event, at, before, decision.state, decision.commands)
        self.decided.append(entry)
        return entry


def replayed(
    graph: Graph, run_id: str, created_at: datetime, events: Iterable[tuple[Event, datetime]]
) -> RunLog:
    """The recorded ``events`` fed through ``decide`` on ``graph``, as they happened."""
    log = RunLog(initial_state(run_id, graph.ref, created_at))
    for event, at in events:
        log.apply(graph, event, at)
    return log
