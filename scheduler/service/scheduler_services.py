"""The parts of a scheduler process that hold in-memory caches, as one value.

:class:`~treadle.scheduler.service.process.SchedulerProcess` rebuilds them together after
a failed step (a rolled-back transaction may have left states in their caches that never
committed), so they travel as one frozen set of references.
"""

from __future__ import annotations

from dataclasses import dataclass

from treadle.scheduler.service.broker_observer import BrokerObserver
from treadle.scheduler.service.definitions import Definitions
from treadle.scheduler.service.flow_release import FlowRelease
from treadle.scheduler.service.reconciler import Reconciler
from treadle.scheduler.service.relay import Relay
from treadle.scheduler.service.report_applier import ReportApplier
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.service.starting import RunStarter


@dataclass(frozen=True)
class SchedulerServices:
    """The parts holding in-memory caches, rebuilt together after a failed step."""

    definitions: Definitions
    runs: RunService
    starter: RunStarter
    relay: Relay
    applier: ReportApplier
    reconciler: Reconciler
    flow: FlowRelease
    observer: BrokerObserver
