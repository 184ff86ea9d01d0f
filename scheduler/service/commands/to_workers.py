"""Commands for the workers: dispatch an attempt, cancel one.

Both leave the process through the outbox: the relay hands them to the publisher (Celery,
or the embedded thread pool), or, in a scheduler process, the scheduler publishes them
itself once its transaction commits (held rows, see ``scheduler/store/command_rows.py``).
The dispatch also writes the attempt's row, queued, on the queue the dispatch names (its
pinned route) or the deployment's default queue.
"""

from __future__ import annotations

from typing import ClassVar

from treadle.scheduler.core.commands import CancelTask, Command, DispatchTask
from treadle.scheduler.service.commands.base import CommandHandler
from treadle.scheduler.store import CommandRows


class DispatchTaskHandler(CommandHandler[DispatchTask]):
    """A queued attempt row and the dispatch, in the outbox for the publisher."""

    command: ClassVar[type[Command]] = DispatchTask
    relayed = True
    leaves_process = True

    def __init__(self, default_queue: str) -> None:
        self.default_queue = default_queue

    def write(self, command: DispatchTask, rows: CommandRows) -> None:
        queue = command.dispatch.queue or self.default_queue
        rows.outbox(command, queue, outgoing=True)
        rows.attempt_dispatched(command.dispatch, queue)


class CancelTaskHandler(CommandHandler[CancelTask]):
    """The attempt's row closed as canceled, and a revoke in the outbox for the publisher."""

    command: ClassVar[type[Command]] = CancelTask
    relayed = True
    leaves_process = True

    def write(self, command: CancelTask, rows: CommandRows) -> None:
        rows.outbox(command, outgoing=True)
        rows.attempt_canceled(command.attempt_id)
