"""The polling loop shared by Client.wait, the database follower, runs watch and wait_until.

A fake clock moves only when the loop sleeps, so no test here waits for real.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from treadle.clientlib.polling import Look, poll


class FakeTime:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 6))
        self.now += seconds


@pytest.fixture
def fake() -> FakeTime:
    return FakeTime()


def looks(*found: Look[int]) -> Iterator[Look[int]]:
    yield from found


def test_pauses_grow_while_nothing_changes_and_restart_after_a_change(fake: FakeTime) -> None:
    script = looks(
        Look(0, changed=True),
        Look(1),
        Look(2),
        Look(3),
        Look(4, changed=True),
        Look(5),
        Look(6, done=True),
    )
    polled = poll(
        lambda: next(script),
        interval=0.1,
        max_interval=0.3,
        growth=2,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    assert (polled.value, polled.done) == (6, True)
    assert fake.sleeps == [0.1, 0.2, 0.3, 0.3, 0.1, 0.2]


def test_a_look_that_is_done_at_once_never_sleeps(fake: FakeTime) -> None:
    polled = poll(lambda: Look("ready", done=True), interval=1, clock=fake.clock, sleep=fake.sleep)
    assert polled == type(polled)("ready", True)
    assert fake.sleeps == []


def test_without_max_interval_the_pause_stays_fixed(fake: FakeTime) -> None:
    script = looks(Look(0), Look(1), Look(2), Look(3, done=True))
    poll(lambda: next(script), interval=0.5, clock=fake.clock, sleep=fake.sleep)
    assert fake.sleeps == [0.5, 0.5, 0.5]


def test_a_timeout_cuts_the_last_pause_short_and_gives_up_after_one_more_look(
    fake: FakeTime,
) -> None:
    seen: list[float] = []

    def look() -> Look[float]:
        seen.append(fake.now - 100.0)
        return Look(fake.now)

    polled = poll(
        look,
        interval=0.4,
        max_interval=0.4,
        timeout=1.0,
        clock=fake.clock,
        sleep=fake.sleep,
    )
    assert not polled.done
    assert polled.value == pytest.approx(101.0)  # the last look's value
    assert fake.sleeps == [0.4, 0.4, 0.2]
    assert seen == pytest.approx([0.0, 0.4, 0.8, 1.0])


def test_errors_of_a_look_propagate(fake: FakeTime) -> None:
    def look() -> Look[None]:
        raise LookupError("gone")

    with pytest.raises(LookupError, match="gone"):
        poll(look, interval=0.1, clock=fake.clock, sleep=fake.sleep)
