"""Commands that only write rows of their own: timers, inquiries, event waits.

And the three that write nothing (a task's or the run's status changed, the run ended):
listeners of the run service observe them as they are saved.
"""

from __future__ import annotations

from typing import ClassVar

from treadle.scheduler.core.commands import (
    AwaitEvent,
    CancelTimer,
    CloseInquiry,
    Command,
    CompleteRun,
    EmitLifecycleEvent,
    OpenInquiry,
    RunStatusChanged,
    ScheduleTimer,
    StopAwaitingEvent,
)
from treadle.scheduler.service.commands.base import CommandHandler
from treadle.scheduler.store import CommandRows


class ScheduleTimerHandler(CommandHandler[ScheduleTimer]):
    """A timer row the scheduler fires when it comes due."""

    command: ClassVar[type[Command]] = ScheduleTimer

    def write(self, command: ScheduleTimer, rows: CommandRows) -> None:
        rows.timer(command.timer_id, command.timer_kind, command.fire_at)


class CancelTimerHandler(CommandHandler[CancelTimer]):
    """The timer's row removed."""

    command: ClassVar[type[Command]] = CancelTimer

    def write(self, command: CancelTimer, rows: CommandRows) -> None:
        rows.timer_dropped(command.timer_id)


class OpenInquiryHandler(CommandHandler[OpenInquiry]):
    """A pending inquiry row, for people to answer."""

    command: ClassVar[type[Command]] = OpenInquiry

    def write(self, command: OpenInquiry, rows: CommandRows) -> None:
        rows.inquiry(command)


class CloseInquiryHandler(CommandHandler[CloseInquiry]):
    """The inquiry's row closed with its final status."""

    command: ClassVar[type[Command]] = CloseInquiry

    def write(self, command: CloseInquiry, rows: CommandRows) -> None:
        rows.inquiry_closed(command.inquiry_id, command.status)


class AwaitEventHandler(CommandHandler[AwaitEvent]):
    """An event-wait row, the index that routes arriving events to the runs awaiting them."""

    command: ClassVar[type[Command]] = AwaitEvent

    def write(self, command: AwaitEvent, rows: CommandRows) -> None:
        rows.event_wait(command.wait_id, command.event_type, command.subject, command.deadline)


class StopAwaitingEventHandler(CommandHandler[StopAwaitingEvent]):
    """The event-wait row removed."""

    command: ClassVar[type[Command]] = StopAwaitingEvent

    def write(self, command: StopAwaitingEvent, rows: CommandRows) -> None:
        rows.event_wait_dropped(command.wait_id)


class EmitLifecycleEventHandler(CommandHandler[EmitLifecycleEvent]):
    """Nothing stored: listeners of the run service see it."""

    command: ClassVar[type[Command]] = EmitLifecycleEvent


class RunStatusChangedHandler(CommandHandler[RunStatusChanged]):
    """Nothing stored (the run row has the status): listeners of the run service see it."""

    command: ClassVar[type[Command]] = RunStatusChanged


class CompleteRunHandler(CommandHandler[CompleteRun]):
    """Nothing stored (the run row has the outcome): listeners of the run service see it."""

    command: ClassVar[type[Command]] = CompleteRun
