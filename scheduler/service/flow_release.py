"""Releasing dispatches held back by concurrency keys and rate limits, at the right moments.

A held dispatch may go when a slot of its key frees (an attempt or a run ended, in this
process or another) or its rate window moves on. While anything is held, each scheduler
step looks (a freed slot is handed on within one step); while nothing is, a look costs one
indexed query every ``TREADLE_FLOW_RECHECK_SECONDS``, which also notices dispatches other
processes held back. What is released goes to the outbox for the relay.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from treadle.scheduler.store import Store


class FlowRelease:
    """Decides when to look for held dispatches and releases those whose claims now hold."""

    def __init__(
        self, store: Store, clock: Callable[[], datetime], *, recheck_seconds: float
    ) -> None:
        self._store = store
        self._clock = clock
        self._recheck = timedelta(seconds=recheck_seconds)
        self._next_look = clock()
        #: Whether dispatches were held at the last look (then every step looks).
        self.holding = False

    def step(self) -> int:
        """Release what may go now; returns how many dispatches went to the outbox."""
        now = self._clock()
        if not self.holding and now < self._next_look:
            return 0
        self._next_look = now + self._recheck
        with self._store.unit_of_work() as uow:
            released = uow.release_held(now)
            self.holding = uow.has_held_dispatches()
        return released

    def seconds_to_next_look(self) -> float:
        """How long a loop with nothing else to do may sleep before looking again."""
        return max((self._next_look - self._clock()).total_seconds(), 0.0)
