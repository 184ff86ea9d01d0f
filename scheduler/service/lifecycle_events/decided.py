"""One decision of a batch being saved, as the lifecycle-event writer gets it.

Apart from :mod:`.run_events` so the run service can collect decisions without importing
the renderings (and what they import) in every process that applies events: only a
service whose store writes lifecycle events loads the writer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from treadle.scheduler.core.commands import Command
from treadle.scheduler.core.state import RunState

__all__ = ["Decided"]


@dataclass(frozen=True, slots=True)
class Decided:
    """One decision: the run's state before and after it, and the commands it emitted."""

    before: RunState
    after: RunState
    commands: Sequence[Command]
