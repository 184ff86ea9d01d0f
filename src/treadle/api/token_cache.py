"""A short per-process memory of the API tokens checked in the database.

Checking a request's token in the database costs a transaction; most requests come from a
few tokens that were checked moments ago. Each app keeps the tokens it verified (never a
refused one) for ``TREADLE_API_TOKEN_CACHE_SECONDS`` (5 s; 0 turns it off), keyed by the
SHA-256 of the token's text (what ``api_tokens.token_hash`` holds: the text is never kept),
and checks a remembered token without the database until the bound passes:

* a token revoked in the database may still be accepted, by a process that verified it
  moments before, for at most that many seconds; then every process checks it anew;
* expiry is checked on every request against the remembered ``expires_at``: an expired
  token is refused from its expiry on, as without the cache;
* a token's role and workspace never change, so nothing else can go stale.

The bound is measured with the app's clock (a test moves it). At most :data:`CAPACITY`
tokens are remembered; past that the oldest are forgotten first.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from treadle.common.access import token_hash
from treadle.scheduler.service.access import LAST_USED_PRECISION
from treadle.scheduler.store import TokenEntry

__all__ = ["CAPACITY", "TokenCache", "digest"]

#: Tokens remembered at most per process.
CAPACITY: Final = 10_000


def digest(plaintext: str) -> str:
    """What a token is remembered by: its SHA-256, as the database stores it."""
    return token_hash(plaintext)


@dataclass
class _Remembered:
    entry: TokenEntry
    verified_at: datetime
    #: When this process last knew ``last_used_at`` written (the row's, or its own write).
    noted_at: datetime | None


class TokenCache:
    """Tokens verified in the database within the last ``seconds`` (thread-safe)."""

    def __init__(self, seconds: float, *, capacity: int = CAPACITY) -> None:
        self.bound = timedelta(seconds=seconds)
        self.capacity = capacity
        self._remembered: dict[str, _Remembered] = {}
        self._lock = threading.Lock()

    def lookup(self, key: str, now: datetime) -> TokenEntry | None:
        """The token remembered under ``key`` if it was verified within the bound and has
        not expired at ``now``; None means: check it in the database."""
        with self._lock:
            remembered = self._remembered.get(key)
            if remembered is None:
                return None
            entry = remembered.entry
            fresh = remembered.verified_at <= now < remembered.verified_at + self.bound
            if not fresh or (entry.expires_at is not None and entry.expires_at <= now):
                del self._remembered[key]
                return None
            return entry

    def remember(self, key: str, entry: TokenEntry, now: datetime) -> None:
        """Keep ``entry``, just verified in the database at ``now``, under ``key``."""
        if self.bound <= timedelta(0):
            return
        with self._lock:
            before = self._remembered.pop(key, None)
            noted = entry.last_used_at
            if before is not None and before.noted_at is not None:
                noted = before.noted_at if noted is None else max(noted, before.noted_at)
            while len(self._remembered) >= self.capacity:
                del self._remembered[next(iter(self._remembered))]  # the oldest
            self._remembered[key] = _Remembered(entry, now, noted)

    def use_due(self, key: str, entry: TokenEntry, now: datetime) -> bool:
        """Whether the token's ``last_used_at`` is worth writing at ``now`` (at most about
        once a minute per token and process, as ``LAST_USED_PRECISION`` says)."""
        with self._lock:
            remembered = self._remembered.get(key)
            noted = remembered.noted_at if remembered is not None else entry.last_used_at
        return noted is None or now - noted >= LAST_USED_PRECISION

    def noted(self, key: str, now: datetime) -> None:
        """``last_used_at`` was written as ``now``."""
        with self._lock:
            remembered = self._remembered.get(key)
            if remembered is not None:
                remembered.noted_at = now
