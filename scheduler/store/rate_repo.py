"""Counting API requests per token and minute, shared by every API process.

A rate limit that each process counted on its own would let ``--workers 4`` through four
times over; the count lives in the database they share. One upsert adds the requests a
process leases (``treadle.api.rate_limit``) to the row of the token's current minute and
returns the new count.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.dialects import postgresql, sqlite

from treadle.scheduler.store.base import Repository
from treadle.scheduler.store.models import api_rate_windows


class RateWindowRepository(Repository):
    """Request counts per token and window."""

    def count_request(self, token_id: str, window_start: datetime, requests: int = 1) -> int:
        """Add ``requests`` requests of ``token_id`` to the window starting at
        ``window_start``; returns the window's count including them."""
        insert = (postgresql.insert if self._postgres else sqlite.insert)(api_rate_windows)
        stmt = insert.values(token_id=token_id, window_start=window_start, requests=requests)
        counted = stmt.on_conflict_do_update(
            index_elements=["token_id", "window_start"],
            set_={"requests": api_rate_windows.c.requests + requests},
        ).returning(api_rate_windows.c.requests)
        return int(self._conn.execute(counted).scalar_one())

    def drop_rate_windows(self, before: datetime) -> int:
        """Delete the windows that started before ``before``; returns how many."""
        gone = self._conn.execute(
            delete(api_rate_windows).where(api_rate_windows.c.window_start < before)
        )
        return int(gone.rowcount)
