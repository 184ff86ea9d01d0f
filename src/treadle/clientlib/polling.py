"""Polling until something holds: the one loop behind every "wait for the run" in Treadle.

:meth:`treadle.Client.wait`, ``treadle run --distributed`` following a run
(:class:`~treadle.cli.follow_db.DatabaseFollower`), ``treadle runs watch`` and the test
helper :func:`treadle.testing.processes.wait_until` all look at something again and again
until it holds. They share the same rules, so they live here once:

* the first pause is ``interval``; each look that finds nothing new lengthens the next
  pause by ``growth`` up to ``max_interval``; a look that finds a change starts again
  from ``interval`` (things that just moved are likely to move again soon);
* with a ``timeout``, the last pause is cut short so the final look happens at the
  deadline, and polling gives up after it (the caller says what giving up means).

The clock and the sleep are injectable, so callers and tests can drive a poll without
real waiting.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")

#: ``wait`` backs off up to this interval between polls, and never polls faster than the minimum.
MAX_POLL_INTERVAL = 0.5
MIN_POLL_INTERVAL = 0.01


@dataclass(frozen=True, slots=True)
class Look(Generic[T]):
    """What one look found: ``value`` to hand back, whether polling is ``done``, and
    whether anything ``changed`` since the previous look (which shortens the next pause)."""

    value: T
    done: bool = False
    changed: bool = False


@dataclass(frozen=True, slots=True)
class Polled(Generic[T]):
    """Where polling stopped: the last look's value, and ``done`` (False: timed out)."""

    value: T
    done: bool


def poll(
    look: Callable[[], Look[T]],
    *,
    interval: float,
    max_interval: float | None = None,
    growth: float = 1.5,
    timeout: float | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> Polled[T]:
    """Call ``look`` until it says done, or until ``timeout`` seconds have passed.

    Pauses follow the module docstring; ``max_interval`` defaults to ``interval`` (fixed
    pauses). Exceptions from ``look`` propagate.
    """
    ceiling = interval if max_interval is None else max_interval
    started = clock()
    pause = interval
    while True:
        seen = look()
        if seen.changed:
            pause = interval
        if seen.done:
            return Polled(seen.value, True)
        elapsed = clock() - started
        if timeout is not None and elapsed >= timeout:
            return Polled(seen.value, False)
        sleep(max(pause if timeout is None else min(pause, timeout - elapsed), 0.0))
        pause = min(pause * growth, ceiling)
