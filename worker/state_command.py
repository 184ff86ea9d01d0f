"""The ``treadle_worker_state`` control command: which incarnation answers, and what it holds.

The scheduler's reconciler broadcasts it to the workers that hold running attempts. One
reply tells it both that the worker lives (and which main process answers for the node
name: a restarted worker does not vouch for its predecessor) and which attempts it still
holds, active or reserved. An attempt the database says runs on a live worker that no
longer holds it finished without its result reaching the scheduler (a Redis broker that
restarted empty lost the report, say): after a grace period it is dispatched again.

Celery keeps control commands in a process-wide registry; :func:`register` (called when a
worker app is built) adds the command there.
"""

from __future__ import annotations

import os
from typing import Any

from celery.worker import state as worker_state
from celery.worker.control import inspect_command

from treadle.common.transport import WORKER_STATE_COMMAND


def held_attempts() -> list[str]:
    """Ids of the tasks (Treadle's attempt ids) this worker runs or has reserved."""
    held = {request.id for request in list(worker_state.active_requests)}
    held.update(request.id for request in list(worker_state.reserved_requests))
    return sorted(held)


def worker_state_reply(_state: Any, **_kwargs: Any) -> dict[str, Any]:
    """The main process id and the attempts held (see the module docstring)."""
    return {"pid": os.getpid(), "attempts": held_attempts()}


def register() -> None:
    """Add the command to Celery's registry (again is harmless: the entry is replaced)."""
    inspect_command(name=WORKER_STATE_COMMAND)(worker_state_reply)
