"""Commands between a run and its child runs, carried out by the relay itself.

They go through the outbox like a dispatch, so they happen if and only if the decision
that asked for them was saved, but they never leave the scheduler: the relay carries each
out in the transaction that claims it, exactly once. A child run's start, a parent told
how its child ended (or that it paused), and the parent's pause, resume and cancel
reaching the child (the same controls an operator uses).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar

from treadle.common.errors import DefinitionError, NotFound, ParameterError
from treadle.common.statuses import RunStatus
from treadle.scheduler.core.commands import (
    CancelChildRun,
    Command,
    PauseChildRun,
    ReportEndToParent,
    ReportPausedToParent,
    ResumeChildRun,
    StartChildRun,
)
from treadle.scheduler.core.events import (
    ChildRunPaused,
    Event,
    TaskFailed,
    TaskSucceeded,
    TaskTimedOut,
)
from treadle.scheduler.core.ids import parse_attempt_id
from treadle.scheduler.service.commands.base import CommandHandler, InProcess
from treadle.scheduler.service.controls import Control, ControlRefused, apply_control_in
from treadle.scheduler.service.definitions import PinnedDefinition
from treadle.scheduler.service.starting import ChildRun
from treadle.scheduler.store import CommandRows

log = logging.getLogger("treadle.scheduler")

#: Error types of a task whose child run could not start, by what stopped it.
_CHILD_START_ERRORS: Mapping[type[Exception], str] = {
    ParameterError: "InvalidInput",
    NotFound: "UnknownWorkflow",
    DefinitionError: "InvalidWorkflow",
}


class _Relayed(CommandHandler[Command]):
    """A command written to the outbox for the relay to carry out in-process."""

    relayed = True

    def write(self, command: Command, rows: CommandRows) -> None:
        rows.outbox(command)


class StartChildRunHandler(_Relayed):
    """Create and start the child run; a child that cannot start fails the parent's task."""

    command: ClassVar[type[Command]] = StartChildRun

    def carry_out(self, command: Command, run_id: str, work: InProcess) -> None:
        assert isinstance(command, StartChildRun)
        uow = work.uow
        try:
            uow.lock_run(command.child_run_id)
            return  # already started (the outbox entry was delivered before)
        except NotFound:
            pass
        now = work.runs.clock()
        parent = work.runs.state_in(uow, run_id)
        try:
            pinned = _child_definition(work, command.workflow, parent.workspace, now)
            parameters = work.starter.prepare_parameters(pinned.spec, command.parameters)
        except (NotFound, ParameterError, DefinitionError) as exc:
            # The child cannot start: its task fails (and the outbox entry is done with),
            # rather than the error escaping and the entry being retried for ever.
            kind = next(k for cls, k in _CHILD_START_ERRORS.items() if isinstance(exc, cls))
            error = {"type": kind, "message": str(exc)}
            failed = TaskFailed(attempt_id=command.parent_attempt_id, error=error)
            work.runs.apply_in(uow, [(run_id, failed)])
            return
        child = ChildRun(
            run_id=command.child_run_id,
            parent_run_id=run_id,
            parent_attempt_id=command.parent_attempt_id,
            depth=command.depth,
            identity=parent.context.identity,
            workspace=parent.workspace,
            secret_tag=parent.context.secret_tag,
        )
        work.starter.start_child(uow, pinned, parameters, child)
        work.child_runs_started.append(command.child_run_id)


def _child_definition(work: InProcess, ref: str, workspace: str, now: datetime) -> PinnedDefinition:
    """What a child run of ``ref`` started by a run of ``workspace`` runs: the workspace's
    own latest version when it created ``ref`` through the API, else the packs' current
    definition (published as a shared version)."""
    definitions = work.runs.definitions
    if work.uow.definition_owner(ref, workspace) == workspace:
        return definitions.pinned(ref, None, work.uow, workspace=workspace)
    return definitions.publish_ref(ref, at=now, uow=work.uow)


class ReportEndToParentHandler(_Relayed):
    """A child run ended: its parent's task succeeds with the child's output, or fails."""

    command: ClassVar[type[Command]] = ReportEndToParent

    def carry_out(self, command: Command, run_id: str, work: InProcess) -> None:
        assert isinstance(command, ReportEndToParent)
        attempt = command.parent_attempt_id
        ref = parse_attempt_id(attempt)
        if ref is None:
            return
        event: Event
        if command.status is RunStatus.SUCCEEDED:
            event = TaskSucceeded(attempt_id=attempt, result=command.output)
        else:
            error = command.error or {}
            detail = error.get("message")
            message = f"child run {run_id} ended {command.status.value}" + (
                f": {detail}" if detail else ""
            )
            failure = {"type": "ChildRunFailed", "message": message, "child_run": run_id}
            if command.status is RunStatus.TIMED_OUT:
                event = TaskTimedOut(attempt_id=attempt, error=failure)
            else:
                event = TaskFailed(attempt_id=attempt, error=failure)
        work.runs.apply_in(work.uow, [(ref.run_id, event)])


class ReportPausedToParentHandler(_Relayed):
    """A child run paused with its parent: the parent counts it as settled for its pause."""

    command: ClassVar[type[Command]] = ReportPausedToParent

    def carry_out(self, command: Command, run_id: str, work: InProcess) -> None:
        assert isinstance(command, ReportPausedToParent)
        with contextlib.suppress(NotFound):
            paused = ChildRunPaused(child_run_id=run_id)
            work.runs.apply_in(work.uow, [(command.parent_run_id, paused)])


class _ChildControl(_Relayed):
    """The parent's pause, resume or cancel reaching one child run (not its children: each
    child's own commands reach them). A child that has ended, or was already moved by the
    operator's cascade, refuses it and nothing changes."""

    control: ClassVar[Control]

    def carry_out(self, command: Command, run_id: str, work: InProcess) -> None:
        assert isinstance(command, CancelChildRun | PauseChildRun | ResumeChildRun)
        reason = f"its parent run {run_id} canceled it" if self.control is Control.CANCEL else None
        with contextlib.suppress(NotFound, ControlRefused):
            apply_control_in(
                work.uow,
                work.runs,
                command.child_run_id,
                self.control,
                reason=reason,
                cascade=False,
            )


class CancelChildRunHandler(_ChildControl):
    command: ClassVar[type[Command]] = CancelChildRun
    control = Control.CANCEL


class PauseChildRunHandler(_ChildControl):
    command: ClassVar[type[Command]] = PauseChildRun
    control = Control.PAUSE


class ResumeChildRunHandler(_ChildControl):
    command: ClassVar[type[Command]] = ResumeChildRun
    control = Control.RESUME
