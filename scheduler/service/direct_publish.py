"""A scheduler publishes the dispatches it decided itself, right after its own commit.

Without this, every step of a run costs two transactions: the one that saves the decision
(its dispatches in the outbox), then a relay pass that claims the rows, decodes them,
publishes and marks them sent. With it, the saving transaction writes the outgoing rows
*held* (``outbox.held_until``, see ``scheduler/store/command_rows.py``) and hands them
here; once it commits, :meth:`DirectPublish.flush` publishes the commands as decided (no
claim, no decode), confirmed by the broker. The rows are marked sent (with the time of the
broker's confirm) by the scheduler's next transaction that applies results (one UPDATE
more in a transaction it makes anyway: :meth:`DirectPublish.write_marks`), or, when a step
applies nothing, by :meth:`DirectPublish.mark_sent` in a short one. On PostgreSQL the
marks ride on the statement that records the results (:meth:`DirectPublish.marks_for`),
costing no round trip of their own. Durability is
unchanged: the rows were committed before anything was sent, and a row not yet marked is
still held. If the process dies between commit and publish, a relay (this scheduler's after a
restart, or another's) takes the rows once their hold ends; if the publish fails, the
hold is lifted at once so the relay retries them as it retries any row. A row published
here and again by a relay is a duplicate, which workers' results make harmless.

Applications (``treadle.Client``, the API) have no broker connection: their rows are
never held and go through the relay, woken by ``NOTIFY``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from treadle.scheduler.service.relay import Publisher
from treadle.scheduler.service.secret_dispatch import with_secrets
from treadle.scheduler.store import HeldCommand, Store, UnitOfWork

log = logging.getLogger("treadle.scheduler")


class DirectPublish:
    """Collects the held commands of committed transactions and publishes them."""

    def __init__(
        self,
        store: Store,
        publisher: Publisher,
        *,
        hold_for: timedelta,
        clock: Callable[[], datetime],
    ) -> None:
        self.hold_for = hold_for
        self._store = store
        self._publisher = publisher
        self._clock = clock
        self._pending: list[HeldCommand] = []
        #: Published, not yet marked sent: (outbox ids, when the broker confirmed them).
        self._unmarked: list[tuple[list[int], datetime]] = []
        self._marked_in: UnitOfWork | None = None
        #: Commands published here (for tests and logs).
        self.published = 0

    @property
    def pending(self) -> int:
        """Held commands committed and not yet published."""
        return len(self._pending)

    def held(self, uow: UnitOfWork, held: Sequence[HeldCommand]) -> None:
        """Called in the transaction that wrote ``held``: attach the secrets the dispatches
        refer to (read in that same transaction), and queue them for after its commit."""
        commands = with_secrets(uow, [h.command for h in held])
        ready = [dataclasses.replace(h, command=c) for h, c in zip(held, commands, strict=True)]
        uow.after_commit(lambda: self._pending.extend(ready))

    @property
    def unmarked(self) -> int:
        """Rows published here and not yet marked sent."""
        return sum(len(ids) for ids, _ in self._unmarked)

    def mark_sent(self) -> None:
        """Mark what was published and is not marked yet, in a transaction of its own."""
        if self._unmarked:
            with self._store.unit_of_work() as uow:
                self.write_marks(uow)

    def write_marks(self, uow: UnitOfWork) -> None:
        """Mark the published rows sent in ``uow`` (once per transaction); forgotten once
        it commits, kept if it rolls back (to be written again)."""
        for ids, at in self.marks_for(uow):
            uow.mark_outbox_sent(ids, at)

    def marks_for(self, uow: UnitOfWork) -> list[tuple[list[int], datetime]]:
        """The marks ``uow`` is to write itself, with another statement it sends anyway
        (``record_results``' ``sent``): given once per transaction, forgotten once it
        commits, kept if it rolls back (to be given again)."""
        marks = list(self._unmarked)
        if not marks or self._marked_in is uow:
            return []
        self._marked_in = uow

        def forget() -> None:
            self._unmarked = [m for m in self._unmarked if m not in marks]

        uow.after_commit(forget)
        return marks

    def flush(self) -> int:
        """Publish what committed transactions held (their rows are marked sent later, see
        the module docstring); returns how many. Raises the publisher's error after
        lifting the rows' hold (best effort)."""
        if not self._pending:
            return 0
        pending, self._pending = self._pending, []
        ids = [h.outbox_id for h in pending]
        try:
            self._publisher.publish([h.command for h in pending])
        except BaseException:
            self._release(ids)
            raise
        self._unmarked.append((ids, self._clock()))
        self.published += len(pending)
        return len(pending)

    def _release(self, ids: Sequence[int]) -> None:
        try:
            with self._store.unit_of_work() as uow:
                uow.release_outbox(ids)
        except Exception as exc:  # the rows stay held until their hold ends
            log.warning("could not release %d held outbox row(s): %s", len(ids), exc)


__all__ = ["DirectPublish"]
