"""Every command type of the core has one handler, found by its type, and one codec entry;
what each handler declares is what the relay and the store do with the command."""

from __future__ import annotations

import sys

import pytest

from treadle.scheduler.core import commands as cmd
from treadle.scheduler.service.commands import CommandHandlers, UnhandledCommand
from treadle.scheduler.store.decision_codec import COMMAND_TYPES


def _command_types() -> set[type[cmd.Command]]:
    """Every subclass of ``Command`` as its module defines it (``dataclass(slots=True)``
    replaces a class; the replaced one may linger among the subclasses)."""
    found: set[type[cmd.Command]] = set()
    pending = list(cmd.Command.__subclasses__())
    while pending:
        sub = pending.pop()
        if getattr(sys.modules[sub.__module__], sub.__name__, None) is sub:
            found.add(sub)
        pending.extend(sub.__subclasses__())
    return found


def test_every_command_type_has_a_handler_and_a_codec_entry() -> None:
    every = _command_types()
    assert len(every) >= 16
    assert CommandHandlers("q").command_types == every
    assert set(COMMAND_TYPES.values()) == every


def test_only_dispatches_and_cancellations_leave_the_process() -> None:
    handlers = CommandHandlers("q")
    leaving = {t for t in handlers.command_types if handlers._by_type[t].leaves_process}
    assert leaving == {cmd.DispatchTask, cmd.CancelTask}
    relayed = {t for t in handlers.command_types if handlers._by_type[t].relayed}
    assert relayed == {
        cmd.DispatchTask,
        cmd.CancelTask,
        cmd.StartChildRun,
        cmd.CancelChildRun,
        cmd.PauseChildRun,
        cmd.ResumeChildRun,
        cmd.ReportPausedToParent,
        cmd.ReportEndToParent,
    }


def test_a_command_without_a_handler_is_refused_by_name() -> None:
    class LaunchRocket(cmd.Command):
        pass

    with pytest.raises(UnhandledCommand, match="LaunchRocket"):
        CommandHandlers("q").handler(LaunchRocket())
