"""What sending one outside event did, as both clients report it.

Apart from :mod:`treadle.scheduler.service.events` (which applies events in a
transaction) so that the API client, which has no database, can build it from an answer
without importing the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class EventOutcome:
    """What sending one event did.

    ``duplicate``: the id was already recorded, so nothing happened. ``started_runs``: runs
    the event's triggers started (one per definition). ``updated_runs``: runs whose state
    the event changed (a wait it released). ``refused``: triggers that matched but could
    not start a run, by workflow ref, with the reason (bad parameters, a failing template).
    """

    event_id: str
    duplicate: bool = False
    started_runs: list[str] = field(default_factory=list)
    updated_runs: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "duplicate": self.duplicate,
            "started_runs": list(self.started_runs),
            "updated_runs": list(self.updated_runs),
            "refused": dict(self.refused),
        }
