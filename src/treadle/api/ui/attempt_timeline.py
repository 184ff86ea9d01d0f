"""A run's attempts on one time axis: the timeline of a run's page.

Each attempt (one try of a task, or of one item of a with_items task, on a worker) is a
row: its task, item, attempt number, worker, status and times, and a bar on the axis
shared by every row, from the first attempt's dispatch to the last one's end (or now, while
one is still open). The bar has two parts: waiting in the queue (dispatched to started)
and running (started to finished, or now). The rows are the accessible form (a table);
the bars are drawn by the server as SVG and hidden from screen readers.

Only the latest :data:`TIMELINE_LIMIT` attempts are shown (the page says so): a with_items
task over a long list makes thousands, and a page must stay small.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final

from treadle.api.ui.rendering import duration_label
from treadle.scheduler.store import UnitOfWork
from treadle.scheduler.store.attempt_listing import AttemptListing, latest_attempts

__all__ = ["TIMELINE_LIMIT", "AttemptBar", "AttemptTimeline", "lay_out", "read_timeline"]

#: The most attempts a run's timeline shows (the latest ones).
TIMELINE_LIMIT: Final = 200
#: The narrowest bar drawn, in percent of the axis, so that an instant stays visible.
_MIN_WIDTH: Final = 0.4
#: Where the axis is labelled, in percent of its length.
_TICKS: Final = (0, 25, 50, 75, 100)


@dataclass(frozen=True, slots=True)
class AttemptBar:
    """One attempt as a row of the timeline; offsets and widths in percent of the axis."""

    task: str
    item: int | None
    attempt: int
    worker: str | None
    status: str
    dispatched_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    queued_offset: float
    queued_width: float
    run_offset: float | None
    run_width: float | None
    queued_seconds: float
    ran_seconds: float | None
    #: Not finished yet: the bar (and its times) end now.
    open: bool


@dataclass(frozen=True, slots=True)
class Tick:
    """A label of the axis: where (percent) and the time since the axis starts."""

    at: float
    label: str


@dataclass(frozen=True, slots=True)
class AttemptTimeline:
    """The bars of the latest attempts, oldest dispatch first, and the run's total."""

    bars: tuple[AttemptBar, ...]
    total: int
    limit: int
    start: datetime | None
    ticks: tuple[Tick, ...]

    @property
    def bounded(self) -> bool:
        """Whether older attempts are left out."""
        return self.total > len(self.bars)


def lay_out(listing: AttemptListing, now: datetime) -> AttemptTimeline:
    """The bars of ``listing`` on one axis, from the first dispatch to the last end (an
    attempt still open ends ``now``)."""
    lines = listing.lines
    if not lines:
        return AttemptTimeline((), listing.total, TIMELINE_LIMIT, None, ())
    first = min(line.attempt.dispatched_at for line in lines)
    ends = [line.attempt.finished_at or now for line in lines]
    span = max((max(ends) - first).total_seconds(), 0.001)

    def percent(moment: datetime) -> float:
        return round(min(max((moment - first).total_seconds() / span * 100, 0.0), 100.0), 3)

    bars = []
    for line, end in zip(lines, ends, strict=True):
        entry = line.attempt
        queued_until = entry.started_at or end
        run_offset = run_width = ran = None
        if entry.started_at is not None:
            run_offset = percent(entry.started_at)
            run_width = max(percent(end) - run_offset, _MIN_WIDTH)
            ran = max((end - entry.started_at).total_seconds(), 0.0)
        queued_offset = percent(entry.dispatched_at)
        bars.append(
            AttemptBar(
                task=line.task,
                item=line.item,
                attempt=entry.attempt,
                worker=entry.worker,
                status=entry.status.value,
                dispatched_at=entry.dispatched_at,
                started_at=entry.started_at,
                finished_at=entry.finished_at,
                queued_offset=queued_offset,
                queued_width=max(percent(queued_until) - queued_offset, _MIN_WIDTH),
                run_offset=run_offset,
                run_width=run_width,
                queued_seconds=max((queued_until - entry.dispatched_at).total_seconds(), 0.0),
                ran_seconds=ran,
                open=entry.finished_at is None,
            )
        )
    ticks = tuple(Tick(at, duration_label(span * at / 100)) for at in _TICKS)
    return AttemptTimeline(tuple(bars), listing.total, TIMELINE_LIMIT, first, ticks)


def read_timeline(uow: UnitOfWork, run_id: str, now: datetime) -> AttemptTimeline:
    """The timeline of the run's latest :data:`TIMELINE_LIMIT` attempts, read in ``uow``."""
    return lay_out(latest_attempts(uow.connection, run_id, TIMELINE_LIMIT), now)
