"""Drain the outbox: publish dispatches and cancellations, carry out internal entries.

Commands become outbox rows in the transaction that saves the run, so nothing is lost if the
process dies right after; the relay then claims unsent rows, hands dispatches to the
publisher (Celery, or the embedded thread pool) and marks them sent in the same transaction.
A crash between publishing and commit publishes again: results are idempotent, so a
duplicate is harmless. Child-run starts and parent notifications never leave the scheduler:
they are applied in the claiming transaction itself, exactly once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from treadle.scheduler.service.runs import INTERNAL_KINDS, RunService
from treadle.scheduler.store import OutboxEntry, Store


class Publisher(Protocol):
    """Sends ``dispatch`` and ``cancel_task`` outbox entries to workers."""

    def publish(self, entries: Sequence[OutboxEntry]) -> None: ...


class Relay:
    """Moves outbox rows to their destination; see the module docstring."""

    def __init__(
        self,
        store: Store,
        publisher: Publisher,
        runs: RunService,
        *,
        clock: Callable[[], datetime],
        batch_size: int = 500,
    ) -> None:
        self._store = store
        self._publisher = publisher
        self._runs = runs
        self._clock = clock
        self._batch_size = batch_size
        self.child_runs_started: list[str] = []

    def drain(self) -> int:
        """Relay until the outbox is empty; returns how many entries were handled."""
        total = 0
        while True:
            with self._store.unit_of_work() as uow:
                entries = uow.claim_outbox(self._batch_size)
                if not entries:
                    return total
                internal = [e for e in entries if e.kind in INTERNAL_KINDS]
                external = [e for e in entries if e.kind not in INTERNAL_KINDS]
                if internal:
                    self.child_runs_started.extend(self._runs.handle_internal(uow, internal))
                if external:
                    self._publisher.publish(external)
                uow.mark_outbox_sent([e.id for e in entries], self._clock())
            total += len(entries)
            if len(entries) < self._batch_size and not internal:
                return total  # a short batch drained the outbox; internal ones may add rows
