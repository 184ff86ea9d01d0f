"""Rate limits per API token: a fixed window of one minute, shared by every API process.

Every API process (uvicorn workers, replicas) counts in the same rows
(``store/rate_repo.py``), so a token gets at most ``api_rate_limit_per_minute`` requests a
minute however many processes serve it. Writing the row on every request would cost a
transaction each, so a process *leases* requests: one upsert adds a share of the limit to
the token's row for the minute and hands the process up to that many requests, which it
then admits from memory. A share is at most :data:`LEASE` requests and at most a quarter
of what was left at this process's last lease, down to one request at a time near the
limit; what a lease would take past the limit is not granted, so:

* a token never gets more than its limit in a minute, however many processes serve it;
* a process that knows the whole minute leased refuses without the database;
* requests leased by one process and not used there (the token's later requests went to
  another process) are lost for the minute: a token spread over P processes may be
  refused up to (P - 1) x :data:`LEASE` requests short of its limit. With one process
  the limit is exact.

A request past the limit is refused with 429 and a ``Retry-After`` header (the seconds
left of the minute) and changes nothing. The first lease of a token in a new minute also
deletes windows older than the last minute, so the table stays small without a job of
its own.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from treadle.common.access import Principal
from treadle.common.errors import TooManyRequests
from treadle.scheduler.store import UnitOfWork

__all__ = ["LEASE", "WINDOW", "RateLimit"]

WINDOW: Final = timedelta(minutes=1)

#: The most requests of one token one process leases at a time.
LEASE: Final = 20

#: Past this many tokens remembered, leases of minutes gone by are forgotten.
_PRUNE_AT: Final = 1024


@dataclass
class _Lease:
    window: datetime
    #: Requests leased and not used yet.
    left: int = 0
    #: The row's count at this process's last lease: what every process leased so far.
    leased: int = 0


class RateLimit:
    """Admits a token's request or refuses it (see the module docstring); thread-safe."""

    def __init__(self, per_minute: int, *, lease: int = LEASE) -> None:
        #: Requests per token and minute; 0 admits everything (no row is written).
        self.per_minute = per_minute
        self.lease_size = lease
        self._leases: dict[str, _Lease] = {}
        self._lock = threading.Lock()

    def take(self, principal: Principal, now: datetime) -> bool:
        """Admit the request from this process's lease, without the database: True when
        admitted, False when a new lease is needed (:meth:`lease`). TooManyRequests when
        the token's whole minute is leased and this process has none of it left."""
        if self.per_minute <= 0 or principal.token_id is None:
            return True
        window = _window_of(now)
        with self._lock:
            held = self._leases.get(principal.token_id)
            if held is None or held.window != window:
                return False
            if held.left > 0:
                held.left -= 1
                return True
            exhausted = held.leased >= self.per_minute
        if exhausted:
            raise self._refusal(principal, window, now)
        return False

    def lease(self, uow: UnitOfWork, principal: Principal, now: datetime) -> None:
        """Lease requests of the token's minute in ``uow`` and admit this one of them;
        TooManyRequests when none is left this minute (``uow`` should then roll back)."""
        if self.per_minute <= 0 or principal.token_id is None:
            return
        token_id = principal.token_id
        window = _window_of(now)
        with self._lock:
            held = self._leases.get(token_id)
            leased = held.leased if held is not None and held.window == window else 0
        share = max(1, min(self.lease_size, (self.per_minute - leased) // 4))
        count = uow.count_request(token_id, window, share)
        if count == share:  # the token's first lease this minute
            uow.drop_rate_windows(window - WINDOW)
        granted = min(share, max(0, self.per_minute - (count - share)))
        if granted == 0:  # others leased the whole minute already: remember it
            self._hold(token_id, window, count, 0)
            raise self._refusal(principal, window, now)
        # one of the requests granted is this one; the others once the lease is committed
        uow.after_commit(lambda: self._hold(token_id, window, count, granted - 1))

    def _hold(self, token_id: str, window: datetime, leased: int, left: int) -> None:
        """Note that the token's row counted ``leased`` and ``left`` more are ours."""
        with self._lock:
            held = self._leases.get(token_id)
            if held is not None and held.window > window:
                return  # a lease of a minute gone by, committed late
            if held is None or held.window != window:
                if len(self._leases) >= _PRUNE_AT:
                    self._prune(window)
                held = self._leases[token_id] = _Lease(window)
            held.leased = max(held.leased, leased)
            held.left += left

    def _prune(self, window: datetime) -> None:
        for token_id in [t for t, held in self._leases.items() if held.window != window]:
            del self._leases[token_id]

    def _refusal(self, principal: Principal, window: datetime, now: datetime) -> TooManyRequests:
        retry_after = max(1, math.ceil((window + WINDOW - now).total_seconds()))
        return TooManyRequests(
            f"{principal.actor} made more than {self.per_minute} requests this minute; "
            f"try again in {retry_after} s",
            retry_after=retry_after,
        )


def _window_of(now: datetime) -> datetime:
    return now.replace(second=0, microsecond=0)
