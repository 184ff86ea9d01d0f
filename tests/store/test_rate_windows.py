"""Request counts per token and minute: one upsert per request, old windows dropped."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from treadle.scheduler.store import Store

MINUTE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def test_requests_are_counted_per_token_and_window_and_old_windows_dropped(store: Store) -> None:
    with store.unit_of_work() as uow:
        counts = [uow.count_request("tok-a", MINUTE) for _ in range(3)]
        other = uow.count_request("tok-b", MINUTE)
        later = uow.count_request("tok-a", MINUTE + timedelta(minutes=1))
    assert (counts, other, later) == ([1, 2, 3], 1, 1)
    with store.unit_of_work() as uow:  # the count holds across transactions
        assert uow.count_request("tok-a", MINUTE) == 4
        assert uow.drop_rate_windows(MINUTE + timedelta(minutes=1)) == 2
        assert uow.count_request("tok-a", MINUTE) == 1  # its window was dropped: anew
