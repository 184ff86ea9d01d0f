"""Follow a run by reading the database: ``treadle run --distributed`` watching the services.

The command started the run through the client; schedulers and workers elsewhere move it.
This loop polls the run's version (one cheap query), loads the run when it changed and
hands it to the progress display, and stops when the run has ended, when it only waits on
people (inquiries) or events, or when the caller's patience (``--wait-timeout``) runs out.

A run that does not move is explained rather than waited on in silence: after a while
without progress the database tells why, and the command says so once ("no scheduler
seems to be running against ..." while the outbox holds unsent messages; "no worker has
started ..." while attempts sit queued).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from treadle.clientlib.connection import reaching
from treadle.common.errors import NotFound
from treadle.common.statuses import AttemptStatus, TaskStatus
from treadle.scheduler.core.state import RunState, TimerKind
from treadle.scheduler.store import Store, UnitOfWork

#: Without ``--wait-timeout``, the hint comes after this long without progress.
STALL_HINT_SECONDS = 10.0
#: Child runs are followed this deep when deciding whether a run only waits.
_MAX_CHILD_DEPTH = 32


def stall_hint_after(wait_timeout: float | None) -> float:
    """When to explain a run that does not move: 10 s, or sooner under a short timeout."""
    if wait_timeout is None:
        return STALL_HINT_SECONDS
    return min(STALL_HINT_SECONDS, max(wait_timeout / 2, 0.2))


@dataclass(frozen=True)
class Followed:
    """Where following stopped: the run's last state, and why it stopped before the end."""

    state: RunState
    waiting: bool = False
    gave_up: bool = False


class DatabaseFollower:
    """Polls one store for a run's changes; see the module docstring."""

    def __init__(
        self,
        store: Store,
        *,
        database: str,
        poll_interval: float = 0.05,
        max_interval: float = 0.5,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._store = store
        self._database = database
        self._poll = poll_interval
        self._max_interval = max_interval
        self._clock = clock
        self._sleep = sleep

    def follow(
        self,
        run_id: str,
        *,
        on_change: Callable[[RunState], None] | None = None,
        on_stall: Callable[[str], None] | None = None,
        wait_timeout: float | None = None,
        stall_after: float = STALL_HINT_SECONDS,
    ) -> Followed:
        """Poll until the run ends, only waits, or ``wait_timeout`` seconds have passed."""
        started = self._clock()
        next_diagnosis = started + stall_after
        interval = self._poll
        seen: int | None = None
        state: RunState | None = None
        told: set[str] = set()
        while True:
            changed = False
            stall: str | None = None
            with reaching(self._store), self._store.unit_of_work() as uow:
                version = uow.run_version(run_id)
                if version is None:
                    raise NotFound(f"run {run_id} not found")
                if version != seen or state is None:
                    seen, state, changed = version, uow.load_run(run_id), True
                waiting = not state.status.is_terminal and only_waits(uow, state)
                now = self._clock()
                if changed:
                    next_diagnosis = now + stall_after
                elif now >= next_diagnosis:
                    next_diagnosis = now + stall_after
                    stall = self.diagnose(uow, run_id)
            if changed:
                interval = self._poll
                if on_change is not None:
                    on_change(state)
            if state.status.is_terminal:
                return Followed(state)
            if waiting:
                return Followed(state, waiting=True)
            if stall is not None and stall not in told:
                told.add(stall)
                if on_stall is not None:
                    on_stall(stall)
            elapsed = self._clock() - started
            if wait_timeout is not None and elapsed >= wait_timeout:
                return Followed(state, gave_up=True)
            pause = interval if wait_timeout is None else min(interval, wait_timeout - elapsed)
            self._sleep(max(pause, 0.0))
            interval = min(interval * 1.5, self._max_interval)

    def diagnose(self, uow: UnitOfWork, run_id: str) -> str | None:
        """Why the run may not be moving, from what the database holds; None if no clue."""
        unsent = uow.pending_outbox_count()
        if unsent:
            return (
                f"no scheduler seems to be running against {self._database}: "
                f"{unsent} message(s) are still waiting in its outbox; start `treadle scheduler` "
                "with the same TREADLE_DATABASE_URL"
            )
        queued = [a for a in uow.list_attempts(run_id) if a.status is AttemptStatus.QUEUED]
        if queued:
            queues = sorted({a.queue or "?" for a in queued})
            actions = sorted({a.action_ref for a in queued})
            return (
                f"no worker has started {', '.join(actions)} yet; is a "
                f"`treadle worker --queues {','.join(queues)}` running on the same broker?"
            )
        return None


def only_waits(uow: UnitOfWork, state: RunState, depth: int = 0) -> bool:
    """Whether nothing but people or outside events can move the run now.

    True when some task waits (an inquiry, an event) and nothing is in flight: no attempt
    dispatched, no retry or delay pending, no child run that does more than wait itself.
    Deadlines of waits do not count: they end waits, they do not do work.
    """
    if state.status.is_terminal or depth > _MAX_CHILD_DEPTH:
        return False
    if any(timer.kind is not TimerKind.DEADLINE for timer in state.timers.values()):
        return False
    waiting = False
    for execution in state.executions.values():
        if execution.status.is_terminal:
            continue
        if execution.status is TaskStatus.WAITING:
            waiting = True
            continue
        for unit in execution.units:
            if unit.status is TaskStatus.WAITING:
                waiting = True
            elif unit.status is TaskStatus.RUNNING:
                child = unit.child_run_id
                if child is None or not _child_only_waits(uow, child, depth):
                    return False
                waiting = True
    return waiting


def _child_only_waits(uow: UnitOfWork, run_id: str, depth: int) -> bool:
    try:
        child = uow.load_run(run_id)
    except NotFound:
        return False  # not started yet: its start is in flight
    return only_waits(uow, child, depth + 1)
