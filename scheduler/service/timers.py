"""Fire the timers that are due: retries, timeouts, delays and deadlines.

Timers live in the database (never as Celery ETAs), so they survive restarts and several
scheduler processes can share them: each claims due rows with ``SKIP LOCKED`` and deletes
them in the transaction that applies the ``TimerFired`` events.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from treadle.scheduler.core.events import Event, TimerFired
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.store import Store


def fire_due_timers(
    store: Store,
    runs: RunService,
    *,
    clock: Callable[[], datetime],
    limit: int = 500,
) -> int:
    """Apply every timer due now; returns how many fired."""
    fired = 0
    while True:
        with store.unit_of_work() as uow:
            due = uow.due_timers(clock(), limit)
            if not due:
                return fired
            events: list[tuple[str, Event]] = [(t.run_id, TimerFired(timer_id=t.id)) for t in due]
            uow.delete_timers([t.id for t in due])
            runs.apply_in(uow, events)
        fired += len(due)
        if len(due) < limit:
            return fired
