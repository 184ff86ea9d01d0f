"""Retry delays as a pure function of the policy and the retry number."""

from __future__ import annotations

from datetime import timedelta

from treadle.common.spec import Backoff, RetrySpec

# No delay grows past a year, whatever the policy says; it keeps timedelta in range.
_CEILING_SECONDS = 365 * 24 * 3600.0


def retry_delay(policy: RetrySpec, retry_number: int) -> timedelta:
    """Delay before retry ``retry_number`` (1 for the first retry), capped by ``max_delay``.

    constant: ``delay``; linear: ``delay * n``; exponential: ``delay * 2 ** (n - 1)``.
    """
    if retry_number < 1:
        raise ValueError("retry_number starts at 1")
    base = policy.delay.total_seconds()
    if policy.backoff is Backoff.LINEAR:
        seconds = base * retry_number
    elif policy.backoff is Backoff.EXPONENTIAL:
        seconds = base * 2.0 ** min(retry_number - 1, 64)
    else:
        seconds = base
    ceiling = _CEILING_SECONDS
    if policy.max_delay is not None:
        ceiling = min(ceiling, policy.max_delay.total_seconds())
    return timedelta(seconds=min(seconds, ceiling))
