"""One handler per command type of the core, found by the command's type.

:class:`CommandHandlers` is the registry: the run service gives its :meth:`write` to the
store, which asks it for each saved command's rows; the relay asks it whether an outbox
command leaves the process and, if not, which handler carries it out. A new command needs
its class in ``scheduler/core/commands.py``, its handler in this package (listed in
:data:`HANDLER_TYPES`) and its tests; ``tests/service/test_command_registry.py`` fails
while a command type has no handler or no codec entry.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from treadle.scheduler.core.commands import Command
from treadle.scheduler.service.commands.base import CommandHandler, InProcess
from treadle.scheduler.service.commands.child_runs import (
    CancelChildRunHandler,
    PauseChildRunHandler,
    ReportEndToParentHandler,
    ReportPausedToParentHandler,
    ResumeChildRunHandler,
    StartChildRunHandler,
)
from treadle.scheduler.service.commands.in_rows import (
    AwaitEventHandler,
    CancelTimerHandler,
    CloseInquiryHandler,
    CompleteRunHandler,
    EmitLifecycleEventHandler,
    OpenInquiryHandler,
    RunStatusChangedHandler,
    ScheduleTimerHandler,
    StopAwaitingEventHandler,
)
from treadle.scheduler.service.commands.to_workers import CancelTaskHandler, DispatchTaskHandler
from treadle.scheduler.store import CommandRows

#: Every handler class but the dispatch's (which needs the default queue).
HANDLER_TYPES: tuple[type[CommandHandler[Any]], ...] = (
    CancelTaskHandler,
    ScheduleTimerHandler,
    CancelTimerHandler,
    OpenInquiryHandler,
    CloseInquiryHandler,
    AwaitEventHandler,
    StopAwaitingEventHandler,
    EmitLifecycleEventHandler,
    RunStatusChangedHandler,
    StartChildRunHandler,
    CompleteRunHandler,
    ReportEndToParentHandler,
    CancelChildRunHandler,
    PauseChildRunHandler,
    ResumeChildRunHandler,
    ReportPausedToParentHandler,
)


class UnhandledCommand(LookupError):
    """A command type without a handler: a programming error, caught by the registry test."""


class CommandHandlers:
    """The handler of every command type. ``default_queue`` is where dispatches of actions
    without a queue of their own go."""

    def __init__(self, default_queue: str) -> None:
        handlers: list[CommandHandler[Any]] = [DispatchTaskHandler(default_queue)]
        handlers.extend(cls() for cls in HANDLER_TYPES)
        self._by_type: dict[type[Command], CommandHandler[Any]] = {
            handler.command: handler for handler in handlers
        }

    @property
    def command_types(self) -> frozenset[type[Command]]:
        return frozenset(self._by_type)

    def handler(self, command: Command) -> CommandHandler[Any]:
        try:
            return self._by_type[type(command)]
        except KeyError:
            raise UnhandledCommand(f"no handler for {type(command).__name__}") from None

    def write(self, rows: CommandRows, commands: Sequence[Command]) -> None:
        """Add the rows of one run's ``commands`` (the store's ``CommandRowWriter``)."""
        for command in commands:
            self.handler(command).write(command, rows)

    def relayed(self, command: Command) -> bool:
        """Whether saving ``command`` gives a relay work."""
        return self.handler(command).relayed

    def leaves_process(self, command: Command) -> bool:
        """Whether the relay hands ``command`` to the publisher (else it carries it out)."""
        return self.handler(command).leaves_process


__all__ = ["HANDLER_TYPES", "CommandHandler", "CommandHandlers", "InProcess", "UnhandledCommand"]
