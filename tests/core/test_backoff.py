"""Retry delays: constant, linear and exponential growth, capped by ``max_delay``."""

from __future__ import annotations

from datetime import timedelta

import pytest

from treadle.common.backoff import retry_delay
from treadle.common.spec import Backoff, RetrySpec


def seconds(policy: RetrySpec, retries: int) -> list[float]:
    return [retry_delay(policy, n).total_seconds() for n in range(1, retries + 1)]


def test_constant_linear_and_exponential_delays() -> None:
    delay = timedelta(seconds=10)
    assert seconds(RetrySpec(count=4, delay=delay), 4) == [10, 10, 10, 10]
    linear = RetrySpec(count=4, delay=delay, backoff=Backoff.LINEAR)
    assert seconds(linear, 4) == [10, 20, 30, 40]
    exponential = RetrySpec(count=4, delay=delay, backoff=Backoff.EXPONENTIAL)
    assert seconds(exponential, 4) == [10, 20, 40, 80]


def test_max_delay_caps_every_backoff() -> None:
    cap = timedelta(seconds=25)
    for backoff in Backoff:
        policy = RetrySpec(count=5, delay=timedelta(seconds=10), backoff=backoff, max_delay=cap)
        assert max(seconds(policy, 5)) <= 25
    exponential = RetrySpec(
        count=5, delay=timedelta(seconds=10), backoff=Backoff.EXPONENTIAL, max_delay=cap
    )
    assert seconds(exponential, 5) == [10, 20, 25, 25, 25]


def test_no_delay_means_retry_at_once() -> None:
    assert retry_delay(RetrySpec(count=3), 3) == timedelta(0)


def test_huge_exponents_stay_within_a_year() -> None:
    policy = RetrySpec(count=1000, delay=timedelta(seconds=1), backoff=Backoff.EXPONENTIAL)
    assert retry_delay(policy, 1000) == timedelta(days=365)


def test_retry_numbers_start_at_one() -> None:
    with pytest.raises(ValueError, match="starts at 1"):
        retry_delay(RetrySpec(count=1), 0)
