"""Runs rendered in the shapes of the other dialects.

* :func:`v1_run` / :func:`v1_lifecycle_events`: the workflows/v1 run record and events;
* :func:`aos_run`: the AOS execution result (``status: ok`` ...).

Golden records of runs are :mod:`treadle.scheduler.service.golden`.

Each reads a :class:`StoredRun` (:func:`load_stored_run`): the run, the definition version
it is pinned to, and its event log, which is replayed to recover what the run did.
"""

from __future__ import annotations

from treadle.scheduler.service.renderings.aos import aos_run
from treadle.scheduler.service.renderings.history import (
    RecordedDecision,
    StoredRun,
    load_stored_run,
)
from treadle.scheduler.service.renderings.workflows_v1 import v1_lifecycle_events, v1_run

__all__ = [
    "RecordedDecision",
    "StoredRun",
    "aos_run",
    "load_stored_run",
    "v1_lifecycle_events",
    "v1_run",
]
