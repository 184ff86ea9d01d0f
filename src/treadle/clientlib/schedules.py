"""Firing a schedule on request (``trigger-now``, ``backfill``) from the CLI or the API.

Both build the same :class:`~treadle.scheduler.service.schedule_firing.ScheduleFiring` as
``treadle beat`` does, around a fresh run starter (:func:`.starting.run_starter`), and fire
in the caller's transaction, which holds the schedule's row lock (so a beat firing the
schedule at that moment waits, and each fire is still recorded once).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from treadle.clientlib.starting import run_starter
from treadle.common.catalog import Catalog
from treadle.common.errors import NotFound
from treadle.common.schedules import OverlapPolicy
from treadle.common.settings import Settings
from treadle.scheduler.service.definitions import Definitions
from treadle.scheduler.service.schedule_firing import FireKind, ScheduleFiring
from treadle.scheduler.service.schedules import find
from treadle.scheduler.store import Store, UnitOfWork
from treadle.scheduler.store.schedule_repo import FireRow

__all__ = ["backfill", "schedule_firing", "trigger_now"]


def schedule_firing(
    store: Store,
    settings: Settings,
    *,
    clock: Callable[[], datetime],
    definitions: Definitions | None = None,
) -> ScheduleFiring:
    """A firing service for one call (its run service caches states: not to be shared)."""
    definitions = definitions or Definitions(store, Catalog())
    return ScheduleFiring(
        run_starter(store, definitions, settings, clock=clock),
        clock=clock,
        late_after=timedelta(seconds=settings.schedule_late_after_seconds),
    )


def trigger_now(
    uow: UnitOfWork, firing: ScheduleFiring, name: str, *, workspace: str | None
) -> FireRow:
    """Fire the schedule now (its overlap policy applies), recorded as a ``manual`` fire."""
    row = find(uow, name, workspace=workspace)
    locked = uow.lock_schedule(row.id)
    if locked is None:
        raise NotFound(f"schedule {name!r} was deleted meanwhile")
    nominal = firing.clock()
    while uow.fire(locked.id, nominal) is not None:  # asked twice at one instant: fire twice
        nominal += timedelta(microseconds=1)
    return firing.fire_now(uow, locked, nominal, kind=FireKind.MANUAL)


def backfill(
    uow: UnitOfWork,
    firing: ScheduleFiring,
    name: str,
    start: datetime,
    end: datetime,
    *,
    workspace: str | None,
    overlap: OverlapPolicy = OverlapPolicy.ALLOW_ALL,
) -> list[FireRow]:
    """Fire each of the schedule's nominal instants in ``[start, end]`` now."""
    row = find(uow, name, workspace=workspace)
    locked = uow.lock_schedule(row.id)
    if locked is None:
        raise NotFound(f"schedule {name!r} was deleted meanwhile")
    return firing.backfill(uow, locked, start, end, overlap=overlap)
