"""A scheduler's view of the emergency stops, and the gate that keeps them from the broker.

:class:`EmergencyStopGuard` keeps the stops that hold in memory and reads them again when a
``NOTIFY`` says they changed (a stop set or lifted anywhere, :mod:`.changes`), and at the
latest every :data:`RECHECK_SECONDS` (a notice lost with its connection, SQLite, the
setting). With no stop holding, a scheduler step costs a comparison of times (and that
small read every few seconds); the gate one attribute look-up per publish.

While a stop holds, :class:`StopGate` (around the publisher of the relay and of the
scheduler's own dispatches) withholds every dispatch of a run the stop holds that is
running, pausing or paused: the message is never sent, and its attempt is then taken back
like one already on the broker (:mod:`.sweep`), so it runs again after the stop. Each step
also lets the sweep pause what the stops hold, take back its attempts (revoked here) and,
once a stop is lifted, resume the runs it paused.

With ``TREADLE_EMERGENCY_STOP`` set, the guard sets the global stop (as
``setting:TREADLE_EMERGENCY_STOP``, audited) whenever it finds none holding: the setting
wins over ``off``. The gauge ``treadle_emergency_stop_active{scope}`` is 1 per scope a
stop holds (``global``, ``workspace:<name>``), 0 once lifted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from treadle.common.access import DEFAULT_WORKSPACE
from treadle.common.emergency_stop import (
    SETTING_ACTOR,
    EmergencyStop,
    StopCover,
    StopScope,
    StopSource,
    cover_of,
)
from treadle.common.metrics import Metrics
from treadle.common.settings import Settings
from treadle.common.statuses import RunStatus
from treadle.scheduler.core.commands import Command, DispatchTask
from treadle.scheduler.service.emergency_stop.changes import set_stop
from treadle.scheduler.service.emergency_stop.sweep import StopSweep
from treadle.scheduler.service.relay import Publisher
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.store import Store
from treadle.scheduler.store.entries import AuditEntry

log = logging.getLogger("treadle.scheduler")

__all__ = ["RECHECK_SECONDS", "EmergencyStopGuard", "StopGate"]

#: Seconds between a scheduler's reads of the stops when no notice comes.
RECHECK_SECONDS = 2.0
#: The runs whose dispatches a holding stop withholds (the others cannot pause).
_WITHHELD = frozenset({RunStatus.RUNNING, RunStatus.PAUSING, RunStatus.PAUSED})
_GAUGE = "treadle_emergency_stop_active"


class Broker(Publisher, Protocol):
    """What the guard sends through: the publisher, which also revokes attempts."""

    def revoke(self, attempt_ids: Iterable[str]) -> None: ...


class StopNotices(Protocol):
    """Tells whether the stops may have changed (``Wakeups``: a ``NOTIFY``, a lost listener)."""

    def take_stop_notice(self) -> bool: ...


class EmergencyStopGuard:
    """The stops as a scheduler knows them, and what its steps do about them."""

    def __init__(
        self,
        settings: Settings,
        clock: Callable[[], datetime],
        notices: StopNotices | None = None,
        metrics: Metrics | None = None,
        *,
        recheck_seconds: float = RECHECK_SECONDS,
    ) -> None:
        self._setting = settings.emergency_stop
        self._clock = clock
        self._notices = notices
        self._metrics = metrics
        self._recheck = timedelta(seconds=recheck_seconds)
        self._next_read: datetime | None = None
        self._store: Store | None = None
        self._sweep: StopSweep | None = None
        self._runs: RunService | None = None
        self._broker: Broker | None = None
        #: The publisher of the relay and of the scheduler's own dispatches, gated.
        self.gated = StopGate(self)
        #: The stops holding at the last read, and what they cover.
        self.stops: tuple[EmergencyStop, ...] = ()
        self.cover = StopCover()
        #: Whether a lifted stop still has runs to resume (at the last read).
        self.lifting = False
        #: Dispatches withheld since the last sweep (their attempts are taken back next).
        self.withheld = 0
        self._labels = {"global"}
        self._set_gauges()

    @property
    def holds(self) -> bool:
        """Whether a stop held at the last read."""
        return not self.cover.empty

    def attach(self, runs: RunService, broker: Broker) -> None:
        """Work through ``runs`` (a scheduler rebuilds it after a failure) and ``broker``
        (which :attr:`gated` publishes to); :meth:`step` does it when they change."""
        if runs is not self._runs:
            self._runs = runs
            self._store = runs.store
            self._sweep = StopSweep(runs.store, runs, clock=self._clock)
        self._broker = broker

    @property
    def broker(self) -> Broker:
        if self._broker is None:
            raise RuntimeError("the emergency stop guard is not attached")
        return self._broker

    # -- a scheduler step ------------------------------------------------------------------

    def step(self, runs: RunService, broker: Broker) -> bool:
        """Read the stops if they may have changed; while one holds, pause and take back
        (revoking what was taken back); once one is lifted, resume. True if a run moved."""
        self.attach(runs, broker)
        now = self._clock()
        fresh = self._notices is not None and self._notices.take_stop_notice()
        if fresh or self._next_read is None or now >= self._next_read:
            self._read(now)
            fresh = True
        if not self.holds and not self.lifting:
            return False
        sweep = self._sweep
        if sweep is None:
            return False
        moved = False
        if self.holds and (fresh or self.withheld):
            self.withheld = 0
            swept = sweep.enforce()
            if swept.revoke:
                broker.revoke(swept.revoke)
            moved = bool(swept.paused or swept.revoke)
        if self.lifting:
            self.lifting = False  # the next read says whether runs are left to resume
            moved = sweep.lift() > 0 or moved
        return moved

    def _read(self, now: datetime) -> None:
        store = self._store
        if store is None:
            return
        with store.snapshot() as uow:
            stops = tuple(uow.emergency_stops())
            lifting = uow.stop_lifts_pending()
        if self._setting and not any(s.scope is StopScope.GLOBAL for s in stops):
            stops = (*stops, self._pin_setting(store, self._setting, now))
        self._next_read = now + self._recheck
        self.lifting = lifting
        if stops == self.stops:
            return
        for stop in stops:
            if all(stop.id != s.id for s in self.stops):
                log.warning("%s: new dispatches are withheld, runs pause", stop.describe())
        for stop in self.stops:
            if all(stop.id != s.id for s in stops):
                log.warning("emergency stop (%s) lifted: runs it paused resume", stop.label)
        self.stops = stops
        self.cover = cover_of(stops)
        self._set_gauges()

    def _pin_setting(self, store: Store, reason: str, now: datetime) -> EmergencyStop:
        """Set the global stop ``TREADLE_EMERGENCY_STOP`` asks for (audited)."""
        with store.unit_of_work() as uow:
            stop, new = set_stop(
                uow, None, reason=reason, terminate=False, by=SETTING_ACTOR, now=now,
                source=StopSource.SETTING,
            )  # fmt: skip
            if new:
                uow.record_audit(
                    AuditEntry(
                        at=now,
                        actor=SETTING_ACTOR,
                        workspace=DEFAULT_WORKSPACE,
                        action="emergency_stop.on",
                        target=stop.label,
                        details={"reason": reason, "source": StopSource.SETTING.value},
                    )
                )
        return stop

    def _set_gauges(self) -> None:
        if self._metrics is None:
            return
        gauge = self._metrics.gauge(_GAUGE)
        holding = {stop.label for stop in self.stops}
        self._labels |= holding
        for label in sorted(self._labels):
            gauge.labels(label).set(1 if label in holding else 0)

    # -- the gate --------------------------------------------------------------------------

    def withhold(self, commands: Sequence[Command]) -> list[Command]:
        """``commands`` without the dispatches of runs a holding stop covers (counted in
        :attr:`withheld`)."""
        dispatches = [c for c in commands if isinstance(c, DispatchTask)]
        if not dispatches or self._store is None:
            return list(commands)
        with self._store.snapshot() as uow:
            places = uow.run_places([c.dispatch.run_id for c in dispatches])
        kept: list[Command] = []
        withheld = 0
        for command in commands:
            if isinstance(command, DispatchTask):
                place = places.get(command.dispatch.run_id)
                if place is not None and self.cover.covers(place[0]) and place[1] in _WITHHELD:
                    withheld += 1
                    continue
            kept.append(command)
        if withheld:
            self.withheld += withheld
            log.info("emergency stop: withheld %d dispatch(es) from the broker", withheld)
        return kept


class StopGate:
    """The guard's broker, withholding what a holding stop covers (see the module docstring)."""

    def __init__(self, guard: EmergencyStopGuard) -> None:
        self._guard = guard

    def publish(self, commands: Sequence[Command]) -> None:
        if self._guard.holds:
            commands = self._guard.withhold(commands)
            if not commands:
                return
        self._guard.broker.publish(commands)
