"""Which lifecycle control applies to a run in which status, and how a refusal reads.

Apart from :mod:`treadle.scheduler.service.controls` (which applies a control in a
transaction) because the API client checks and reports the same things without a
database, and must not import the store to do so.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from treadle.common.errors import ConflictError
from treadle.common.statuses import RunStatus

__all__ = ["APPLIES_TO", "STILL_GOING", "Control", "ControlRefused", "refusal"]


class Control(StrEnum):
    """What an operator may ask of a run."""

    PAUSE = "pause"
    RESUME = "resume"
    CANCEL = "cancel"
    RETRY = "retry"
    COMPENSATE = "compensate"


#: The statuses of a run that has not ended.
STILL_GOING = frozenset(
    {
        RunStatus.PENDING,
        RunStatus.RUNNING,
        RunStatus.PAUSING,
        RunStatus.PAUSED,
    }
)

#: The run statuses each control applies to.
APPLIES_TO: Mapping[Control, frozenset[RunStatus]] = {
    Control.PAUSE: frozenset({RunStatus.RUNNING}),
    Control.RESUME: frozenset({RunStatus.PAUSING, RunStatus.PAUSED}),
    Control.CANCEL: STILL_GOING,
    Control.RETRY: frozenset({RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.CANCELED}),
    # A run still going is cancelled first, then compensated.
    Control.COMPENSATE: STILL_GOING
    | {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.CANCELED},
}

#: What each control needs, as the refusal explains it.
_NEEDS: Mapping[Control, str] = {
    Control.PAUSE: "only running runs can be paused",
    Control.RESUME: "only paused (or pausing) runs can be resumed",
    Control.CANCEL: "only runs that have not ended can be canceled",
    Control.RETRY: "only failed, timed out or canceled runs can be retried",
    Control.COMPENSATE: "a run is compensated once, after its compensation has ended",
}


class ControlRefused(ConflictError):
    """A control that does not apply to the run as it is; nothing was changed."""

    def __init__(self, message: str, *, run_id: str, control: Control, status: RunStatus) -> None:
        self.run_id = run_id
        self.control = control
        self.status = status
        super().__init__(message)


def refusal(control: Control, run_id: str, status: RunStatus) -> str | None:
    """Why ``control`` does not apply to a run in ``status``; None when it does."""
    if status in APPLIES_TO[control]:
        return None
    if control is Control.PAUSE and status in (RunStatus.PAUSING, RunStatus.PAUSED):
        return f"run {run_id} is {status.value} already"
    if control is Control.COMPENSATE and status is RunStatus.COMPENSATING:
        return f"run {run_id} is compensating already; wait for it to end"
    if control is Control.COMPENSATE and status is RunStatus.COMPENSATED:
        return f"run {run_id} is compensated already; there is nothing left to undo"
    if control is Control.CANCEL and status is RunStatus.COMPENSATING:
        return f"run {run_id} is compensating; a compensation runs to its end"
    return f"run {run_id} is {status.value}; {_NEEDS[control]}"
