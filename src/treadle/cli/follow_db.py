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
from treadle.clientlib.polling import Look, poll
from treadle.common.errors import NotFound
from treadle.common.statuses import AttemptStatus
from treadle.scheduler.core.queries import only_waits
from treadle.scheduler.core.state import RunState
from treadle.scheduler.service.why import explain, gather_facts
from treadle.scheduler.store import Store, UnitOfWork

#: Without ``--wait-timeout``, the hint comes after this long without progress.
STALL_HINT_SECONDS = 10.0


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
        next_diagnosis = self._clock() + stall_after
        seen: int | None = None
        state: RunState | None = None
        told: set[str] = set()

        def look() -> Look[Followed]:
            nonlocal next_diagnosis, seen, state
            changed = False
            stall: str | None = None
            with reaching(self._store), self._store.snapshot() as uow:
                version = uow.run_version(run_id)
                if version is None:
                    raise NotFound(f"run {run_id} not found")
                if version != seen or state is None:
                    seen, state, changed = version, uow.load_run(run_id), True
                waiting = only_waits(state, lambda child: _stored_run(uow, child))
                now = self._clock()
                if changed:
                    next_diagnosis = now + stall_after
                elif now >= next_diagnosis:
                    next_diagnosis = now + stall_after
                    stall = self.diagnose(uow, run_id, state)
            if changed and on_change is not None:
                on_change(state)
            if state.status.is_terminal or waiting:
                return Look(Followed(state, waiting=waiting), done=True, changed=changed)
            if stall is not None and stall not in told:
                told.add(stall)
                if on_stall is not None:
                    on_stall(stall)
            return Look(Followed(state, gave_up=True), changed=changed)

        polled = poll(
            look,
            interval=self._poll,
            max_interval=self._max_interval,
            growth=1.5,
            timeout=wait_timeout,
            clock=self._clock,
            sleep=self._sleep,
        )
        return polled.value

    def diagnose(self, uow: UnitOfWork, run_id: str, state: RunState | None = None) -> str | None:
        """Why the run may not be moving, from what the database holds; None if no clue."""
        unsent = uow.pending_outbox_count()
        if unsent:
            return (
                f"no scheduler seems to be running against {self._database}: "
                f"{unsent} message(s) are still waiting in its outbox; start `treadle scheduler` "
                "with the same TREADLE_DATABASE_URL"
            )
        if state is None:
            state = uow.load_run(run_id)
        facts = gather_facts(uow, state)
        reasons = explain(state, facts)
        queued = [a for a in facts.attempts.values() if a.status is AttemptStatus.QUEUED]
        held = set(facts.flow_waits)
        if queued and not all(a.attempt_id in held for a in queued):
            queues = sorted({a.queue or "?" for a in queued if a.attempt_id not in held})
            actions = sorted({a.action_ref for a in queued if a.attempt_id not in held})
            return (
                f"no worker has started {', '.join(actions)} yet; is a "
                f"`treadle worker --queues {','.join(queues)}` running on the same broker?"
            )
        if reasons:  # the run waits for something else: say what (`treadle runs why`)
            return "waiting: " + "; ".join(f"{r.task}: {r.message}" for r in reasons[:3])
        return None


def _stored_run(uow: UnitOfWork, run_id: str) -> RunState | None:
    """The run as stored, or None when it is not (a child run whose start is in flight)."""
    try:
        return uow.load_run(run_id)
    except NotFound:
        return None
