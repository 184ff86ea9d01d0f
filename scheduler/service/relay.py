"""Drain the outbox: decode each command once, publish what leaves, carry out the rest.

Commands become outbox rows in the transaction that saves the run, so nothing is lost if the
process dies right after; the relay then claims unsent rows, decodes each into its typed
command, hands those that leave the process (dispatches, cancellations) to the publisher
(Celery, or the embedded thread pool), with the encrypted secrets their inputs refer to
(``secret_dispatch``), and marks the rows sent in the same transaction. A
crash between publishing and commit publishes again: results are idempotent, so a
duplicate is harmless. Commands that never leave the scheduler (child runs and their
parents) are carried out by their handlers in the claiming transaction itself, exactly
once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from treadle.scheduler.core.commands import Command
from treadle.scheduler.service.commands import CommandHandlers, InProcess
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.service.secret_dispatch import with_secrets
from treadle.scheduler.service.starting import RunStarter
from treadle.scheduler.store import CodecError, Store
from treadle.scheduler.store.decision_codec import decode_command

log = logging.getLogger("treadle.scheduler")


class Publisher(Protocol):
    """Sends the commands that leave the process (dispatches, cancellations) to workers."""

    def publish(self, commands: Sequence[Command]) -> None: ...


class Relay:
    """Moves outbox rows to their destination; see the module docstring."""

    def __init__(
        self,
        starter: RunStarter,
        publisher: Publisher,
        handlers: CommandHandlers,
        *,
        clock: Callable[[], datetime],
        batch_size: int = 500,
    ) -> None:
        self._starter = starter
        self._runs: RunService = starter.runs
        self._store: Store = starter.runs.store
        self._publisher = publisher
        self._handlers = handlers
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
                work = InProcess(uow, self._runs, self._starter)
                outgoing: list[Command] = []
                for entry in entries:
                    try:
                        command = decode_command(entry.payload)
                    except CodecError as exc:  # it can never be decoded: do not block the rest
                        log.error(
                            "dropping outbox entry %s of run %s: %s", entry.id, entry.run_id, exc
                        )
                        continue
                    handler = self._handlers.handler(command)
                    if handler.leaves_process:
                        outgoing.append(command)
                    else:
                        handler.carry_out(command, entry.run_id, work)
                if outgoing:
                    self._publisher.publish(with_secrets(uow, outgoing))
                uow.mark_outbox_sent([e.id for e in entries], self._clock())
            self.child_runs_started.extend(work.child_runs_started)
            total += len(entries)
            carried_out = len(entries) - len(outgoing)
            if len(entries) < self._batch_size and not carried_out:
                return total  # a short batch drained the outbox; carried-out ones may add rows
