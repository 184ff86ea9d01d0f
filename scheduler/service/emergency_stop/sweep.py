"""What a scheduler does while an emergency stop holds, and once it is lifted.

:meth:`StopSweep.enforce`, in short transactions of a batch each:

1. every running run a stop holds is paused (``PauseRequested``, reason
   ``emergency_stop: <why>``, by whoever set the stop) and remembered in
   ``emergency_stop_runs``; a run an operator paused is left alone and not remembered;
2. the attempts of the paused (or pausing) runs that wait on the broker are taken back:
   ended ``lost`` (reason ``emergency_stop: ...``) and revoked by the caller, so workers
   drop their messages; the core runs each again as a new attempt when the run resumes,
   without charging its retry policy (nor the delivery limit: such a loss is no worker's
   fault);
3. with a stop set to ``terminate``, the running attempts of those runs too: revoked with
   ``terminate``, so their workers kill them; otherwise they finish, their results are
   applied, and the run ends pausing as ``paused``.

:meth:`StopSweep.lift` resumes the runs a lifted stop paused (``ResumeRequested``, by
whoever lifted it), unless another stop still holds them: then that stop keeps them.

Every step is safe to repeat and to run on several schedulers at once: a paused run is not
paused again, an ended attempt is not ended again, and the runs to resume are claimed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from treadle.common.emergency_stop import (
    EMERGENCY_STOP,
    EmergencyStop,
    cover_of,
    holding,
)
from treadle.common.errors import NotFound
from treadle.common.statuses import AttemptStatus
from treadle.scheduler.core.endings import AttemptEnding
from treadle.scheduler.service.control_rules import Control, ControlRefused
from treadle.scheduler.service.controls import apply_control_in
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.store import Store, UnitOfWork

log = logging.getLogger("treadle.scheduler")

__all__ = ["StopSweep", "Swept"]

#: The most batches one call works through; the next call goes on (a stop over very many
#: runs must not hold up the scheduler's other work).
MAX_BATCHES = 20


@dataclass
class Swept:
    """What one :meth:`StopSweep.enforce` did: runs paused, attempts taken back (to revoke)."""

    paused: int = 0
    taken_back: list[str] = field(default_factory=list)
    terminated: list[str] = field(default_factory=list)

    @property
    def revoke(self) -> list[str]:
        return [*self.taken_back, *self.terminated]


class StopSweep:
    """Pauses, takes back and resumes for the emergency stops (see the module docstring)."""

    def __init__(
        self,
        store: Store,
        runs: RunService,
        *,
        clock: Callable[[], datetime],
        batch_size: int = 100,
    ) -> None:
        self._store = store
        self._runs = runs
        self._clock = clock
        self._batch = batch_size

    # -- while a stop holds ------------------------------------------------------------------

    def enforce(self) -> Swept:
        """Pause what the holding stops cover and take back its attempts."""
        swept = Swept()
        for _ in range(MAX_BATCHES):
            paused, more = self._pause_batch()
            swept.paused += paused
            if not more:
                break
        swept.taken_back = self._take_back(running=False)
        swept.terminated = self._take_back(running=True)
        return swept

    def _pause_batch(self) -> tuple[int, bool]:
        with self._store.unit_of_work() as uow:
            stops = uow.emergency_stops()
            run_ids = uow.runs_to_stop(cover_of(stops), self._batch)
            if not run_ids:
                return 0, False
            places = uow.run_places(run_ids)
            paused: dict[int, list[str]] = {}
            for run_id in run_ids:
                stop = holding(stops, places[run_id][0]) if run_id in places else None
                if stop is None:
                    continue
                if self._control(uow, run_id, Control.PAUSE, pause_reason(stop), stop.set_by):
                    paused.setdefault(stop.id, []).append(run_id)
            now = self._clock()
            for stop_id, ids in paused.items():
                uow.remember_stopped_runs(stop_id, ids, now)
        count = sum(len(ids) for ids in paused.values())
        if count:
            log.warning("emergency stop: paused %d run(s)", count)
        return count, len(run_ids) == self._batch

    def _take_back(self, *, running: bool) -> list[str]:
        taken: list[str] = []
        for _ in range(MAX_BATCHES):
            with self._store.unit_of_work() as uow:
                stops = uow.emergency_stops()
                if running:
                    stops = [stop for stop in stops if stop.terminate]
                cover = cover_of(stops)
                found = uow.attempts_to_take_back(cover, running=running, limit=self._batch)
                endings = [
                    _taken_back(attempt_id, stop, running=running, now=self._clock())
                    for attempt_id, workspace in found
                    if (stop := holding(stops, workspace)) is not None
                ]
                fresh = self._runs.settle(uow, endings) if endings else set()
            taken.extend(sorted(fresh))
            if len(found) < self._batch:
                break
        if taken:
            what = "terminated %d running attempt(s)" if running else "took back %d attempt(s)"
            log.warning("emergency stop: " + what, len(taken))
        return taken

    # -- once a stop is lifted -----------------------------------------------------------------

    def lift(self) -> int:
        """Resume the runs lifted stops paused (or hand them to a stop that still holds
        them); returns how many were resumed."""
        resumed = 0
        for _ in range(MAX_BATCHES):
            with self._store.unit_of_work() as uow:
                claimed = uow.stopped_runs_to_lift(self._batch)
                if not claimed:
                    break
                stops = uow.emergency_stops()
                done: list[str] = []
                kept: dict[int, list[str]] = {}
                for run_id, workspace, lifted in claimed:
                    still = holding(stops, workspace)
                    if still is not None:
                        kept.setdefault(still.id, []).append(run_id)
                        continue
                    by = lifted.lifted_by or lifted.set_by
                    if self._control(uow, run_id, Control.RESUME, resume_reason(lifted), by):
                        resumed += 1
                    done.append(run_id)
                uow.forget_stopped_runs(done)
                for stop_id, ids in kept.items():
                    uow.hand_on_stopped_runs(ids, stop_id)
            if len(claimed) < self._batch:
                break
        if resumed:
            log.warning("emergency stop lifted: resumed %d run(s)", resumed)
        return resumed

    def _control(
        self, uow: UnitOfWork, run_id: str, control: Control, reason: str, by: str
    ) -> bool:
        """Apply ``control`` to ``run_id``; False when it no longer applies (the run ended,
        or was paused or resumed meanwhile) or the run is gone."""
        try:  # a refusal comes before any change: the transaction goes on
            apply_control_in(uow, self._runs, run_id, control, reason=reason, by=by)
        except (ControlRefused, NotFound):
            return False
        return True


def pause_reason(stop: EmergencyStop) -> str:
    """The reason runs pause with: ``emergency_stop: <the stop's reason>``."""
    return f"{EMERGENCY_STOP}: {stop.reason}"


def resume_reason(stop: EmergencyStop) -> str:
    """The reason runs resume with once ``stop`` is lifted."""
    why = f": {stop.lift_reason}" if stop.lift_reason else ""
    return f"{EMERGENCY_STOP} lifted{why}"


def _taken_back(
    attempt_id: str, stop: EmergencyStop, *, running: bool, now: datetime
) -> AttemptEnding:
    what = "terminated" if running else "taken back from the broker"
    return AttemptEnding(
        attempt_id,
        AttemptStatus.LOST,
        finished_at=now,
        reason=f"{EMERGENCY_STOP}: {what} ({stop.label})",
        error={
            "type": "EmergencyStop",
            "message": (
                f"{what} by the {stop.describe()}; the task runs again as a new attempt "
                "when the stop is lifted"
            ),
        },
    )
