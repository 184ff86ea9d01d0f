"""Rate limits per API token: a fixed window of one minute, counted in the database.

Every API process (uvicorn workers, replicas) counts in the same rows
(``store/rate_repo.py``), so a token gets ``api_rate_limit_per_minute`` requests a minute
however many processes serve it. A request past the limit is refused with 429 and a
``Retry-After`` header (the seconds left of the minute) and changes nothing. The first
request of a token in a new minute also deletes windows older than the last minute, so
the table stays small without a job of its own.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from treadle.common.access import Principal
from treadle.common.errors import TooManyRequests
from treadle.scheduler.store import UnitOfWork

__all__ = ["RateLimit"]

WINDOW = timedelta(minutes=1)


class RateLimit:
    """Admits a token's request or refuses it (see the module docstring)."""

    def __init__(self, per_minute: int) -> None:
        #: Requests per token and minute; 0 admits everything (no row is written).
        self.per_minute = per_minute

    def admit(self, uow: UnitOfWork, principal: Principal, now: datetime) -> None:
        """Count the request; TooManyRequests if it is one too many this minute."""
        if self.per_minute <= 0 or principal.token_id is None:
            return
        window = now.replace(second=0, microsecond=0)
        count = uow.count_request(principal.token_id, window)
        if count == 1:
            uow.drop_rate_windows(window - WINDOW)
        if count > self.per_minute:
            retry_after = max(1, math.ceil((window + WINDOW - now).total_seconds()))
            raise TooManyRequests(
                f"{principal.actor} made more than {self.per_minute} requests this minute; "
                f"try again in {retry_after} s",
                retry_after=retry_after,
            )
