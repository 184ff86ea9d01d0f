"""Replay a recorded run against another version of its workflow: where do they differ?

``treadle replay RUN_ID|GOLDEN_FILE --against WORKFLOW[@VERSION]`` certifies a new
version before it is published: the recorded run's results are fed to the new
definition's pure core, matched by task, pass, item and attempt (:mod:`.keys`,
:mod:`.feed`, :mod:`.driver`), and the two runs are compared step by step
(:mod:`.steps`, :mod:`.report`). No action runs; nothing is stored. Pure.

:meth:`ReplayReport.document` is the report as ``treadle replay --json`` prints it and the
API answers it; its ``causes`` are what ``treadle_replay_divergences_total`` counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from treadle.common.graph import Graph
from treadle.scheduler.core.events import Event
from treadle.scheduler.core.state import RunState
from treadle.scheduler.version_replay.driver import feed_new_version
from treadle.scheduler.version_replay.feed import feed_of
from treadle.scheduler.version_replay.keys import CallKey, StepKey
from treadle.scheduler.version_replay.log import replayed
from treadle.scheduler.version_replay.report import Cause, Change, Divergence, divergences
from treadle.scheduler.version_replay.steps import trace_of

__all__ = [
    "CallKey",
    "Cause",
    "Change",
    "Divergence",
    "ReplayReport",
    "StepKey",
    "replay_against",
]


@dataclass(frozen=True)
class ReplayReport:
    """What replaying a recorded run against a new version found."""

    steps_recorded: int
    steps_new: int
    divergences: tuple[Divergence, ...]

    @property
    def identical(self) -> bool:
        return not self.divergences

    @property
    def causes(self) -> tuple[Cause, ...]:
        """The distinct causes of the divergences, in :class:`Cause` order."""
        found = {divergence.cause for divergence in self.divergences}
        return tuple(cause for cause in Cause if cause in found)

    def document(self, run: str, recorded: str, against: str) -> dict[str, Any]:
        """The report as JSON: the run, what it was recorded on and replayed against,
        whether the two decide alike, each divergence, its causes and the step counts."""
        return {
            "run": run,
            "recorded": recorded,
            "against": against,
            "identical": self.identical,
            "divergences": [divergence.as_json() for divergence in self.divergences],
            "causes": [cause.value for cause in self.causes],
            "steps": {"recorded": self.steps_recorded, "new": self.steps_new},
        }


def replay_against(
    recorded_graph: Graph,
    new_graph: Graph,
    run_id: str,
    created_at: datetime,
    events: Sequence[tuple[Event, datetime]],
) -> ReplayReport:
    """Feed the run recorded as ``events`` (on ``recorded_graph``) to ``new_graph``."""
    recorded = replayed(recorded_graph, run_id, created_at, events)
    fed = feed_new_version(new_graph, feed_of(recorded), run_id, created_at)
    old_steps = trace_of(recorded, recorded_graph)
    new_steps = trace_of(fed.log, new_graph)
    runs = (_run(recorded.state), _run(fed.log.state))
    found = divergences(old_steps, new_steps, fed.unanswered, runs)
    return ReplayReport(len(old_steps), len(new_steps), tuple(found))


def _run(state: RunState) -> dict[str, object]:
    ended = state.status.is_terminal
    return {"status": state.status.value, "output": state.output, "ended": ended}
