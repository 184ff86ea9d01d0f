"""Replaying a recorded run against a version: what ``treadle replay`` and the API share.

A recorded run comes from the database (a :class:`~.renderings.StoredRun`, by id) or from
a golden record's bytes (:func:`recorded_from_golden`, rebuilt from the events and the
definition it carries; its signature is ``golden verify``'s business, not this). Either
becomes a :class:`RecordedRun`; :func:`replay_recorded` feeds it to another definition's
graph (:func:`treadle.scheduler.version_replay.replay_against`, the pure work) and
answers a :class:`Replay`, whose :meth:`~Replay.document` is what ``treadle replay --json``
prints and the API answers. Reading the run or the version is the caller's.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from treadle.common.errors import ConflictError
from treadle.common.graph import Graph
from treadle.scheduler.core.events import Event
from treadle.scheduler.service.golden import read_golden, stored_run_of
from treadle.scheduler.service.renderings import StoredRun
from treadle.scheduler.version_replay import ReplayReport, replay_against

__all__ = ["RecordedRun", "Replay", "recorded_from_golden", "replay_recorded"]


@dataclass(frozen=True)
class RecordedRun:
    """A run to replay: its id, a label of what it ran (``orders.fulfil v3``), that
    definition's graph, when it was created, and its event log with each event's time."""

    run_id: str
    label: str
    graph: Graph
    created_at: datetime
    events: tuple[tuple[Event, datetime], ...]

    @classmethod
    def of(cls, run: StoredRun) -> RecordedRun:
        """The run ``run`` describes; ConflictError when it has no event to replay."""
        events = tuple((recorded.event, recorded.at) for recorded in run.events)
        if not events:
            raise ConflictError(f"run {run.state.run_id} has no events to replay")
        created = run.state.created_at or events[0][1]
        label = f"{run.pinned.ref} v{run.pinned.version}"
        return cls(run.state.run_id, label, run.pinned.graph, created, events)


def recorded_from_golden(data: bytes, file: str) -> RecordedRun:
    """The run the golden record ``data`` (named ``file`` in messages) holds.

    :class:`~.golden.GoldenFormatError` naming the line and field when it is not a golden
    record, or one whose definition or events cannot be read back.
    """
    return RecordedRun.of(stored_run_of(read_golden(data, file)))


@dataclass(frozen=True)
class Replay:
    """A recorded run replayed against ``against`` (a label: ``orders.fulfil v4``)."""

    recorded: RecordedRun
    against: str
    report: ReplayReport

    def document(self) -> dict[str, Any]:
        """The report as JSON (``docs/determinism.md``)."""
        return self.report.document(self.recorded.run_id, self.recorded.label, self.against)


def replay_recorded(recorded: RecordedRun, against: str, graph: Graph) -> Replay:
    """Feed ``recorded`` to ``graph`` (the definition labelled ``against``)."""
    report = replay_against(
        recorded.graph, graph, recorded.run_id, recorded.created_at, recorded.events
    )
    return Replay(recorded, against, report)
