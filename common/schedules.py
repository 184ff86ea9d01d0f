"""When a schedule fires: cron in a time zone or a fixed interval, start, end and jitter.

Pure arithmetic, no clock: every function takes the instants it reasons about. The CLI,
the API and YAML validation check a schedule here; ``treadle beat`` asks here when each
schedule next fires; :mod:`treadle.scheduler.core.schedule_plan` decides what happens to
the fires that came due. Instants are aware UTC datetimes; wall times are naive.

Daylight saving (``docs/schedules.md``): a cron wall time that does not exist (the gap
when clocks go forward) fires once, at the first instant after the gap; a wall time that
happens twice (clocks go back) fires once, at its first occurrence. Several wall times in
one gap collapse into that one instant: no fire twice, none lost. Intervals count absolute
time from their anchor (``start``, else the Unix epoch) and ignore wall clocks.

Jitter delays a fire by a fraction of ``jitter`` derived from the schedule's key and the
fire's nominal instant (SHA-256), so every beat process computes the same instant.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from treadle.common.cron import CronExpression, parse_cron
from treadle.common.errors import ParameterError

__all__ = [
    "EPOCH",
    "MissedPolicy",
    "OverlapPolicy",
    "ScheduleError",
    "ScheduleRule",
    "checked_zone",
    "instant_in_range",
    "jitter_delay",
    "wall_to_instant",
]

EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
#: The latest start or end (far from ``datetime.max``, so arithmetic never overflows).
LATEST: Final = datetime(9000, 1, 1, tzinfo=UTC)
#: The longest interval or jitter.
MAX_SPAN: Final = timedelta(days=3650)


def instant_in_range(value: datetime) -> bool:
    """Whether ``value`` is aware and between 1970 and 9000 (what start, end and backfill
    bounds may be: far from ``datetime``'s limits, so no arithmetic overflows)."""
    if value.tzinfo is None or value.utcoffset() is None:
        return False
    try:
        return EPOCH <= value.astimezone(UTC) <= LATEST
    except OverflowError:
        return False


class ScheduleError(ParameterError):
    """A schedule that cannot be used (bad cron, unknown time zone, end before start ...)."""

    def __init__(self, problems: list[str] | tuple[str, ...], *, subject: str = "schedule") -> None:
        super().__init__(list(problems), subject=subject)


class OverlapPolicy(StrEnum):
    """What a fire does while a run the schedule started earlier is still going (Temporal)."""

    SKIP = "skip"  # record the fire as skipped
    BUFFER_ONE = "buffer_one"  # keep one fire to start when the running one ends
    BUFFER_ALL = "buffer_all"  # keep every fire, started one after another
    CANCEL_OTHER = "cancel_other"  # cancel the running run(s), start this one
    ALLOW_ALL = "allow_all"  # start it anyway


class MissedPolicy(StrEnum):
    """Which fires missed while beat was down are started (Kestra's recoverMissedSchedules)."""

    ALL = "all"  # every missed fire within the catch-up window
    LAST = "last"  # only the newest
    NONE = "none"  # none: only fires that are not late


def checked_zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; :class:`ScheduleError` when there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleError([f"unknown time zone {name!r} (an IANA name such as "
                             "'Europe/Berlin' or 'UTC')"]) from None  # fmt: skip


def wall_to_instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant a cron wall time fires at in ``zone``.

    Its first occurrence when it happens twice; the end of the gap when it does not exist
    (the first instant after the clocks jumped).
    """
    first = wall.replace(tzinfo=zone, fold=0)
    instant = first.astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant  # exists (fold=0 is its first occurrence when repeated)
    # In a gap: fold=0 reads it with the offset before the jump, which lands after the
    # gap's end; the gap ends where the later offset begins: step back to that instant.
    after = wall.replace(tzinfo=zone, fold=1).astimezone(UTC)
    return _gap_end(min(instant, after), max(instant, after), zone)


def _gap_end(low: datetime, high: datetime, zone: ZoneInfo) -> datetime:
    """The first instant in (low, high] whose offset is the one after the transition."""
    target = high.astimezone(zone).utcoffset()
    while high - low > timedelta(seconds=1):
        middle = low + (high - low) / 2
        if middle.astimezone(zone).utcoffset() == target:
            high = middle
        else:
            low = middle
    return high.replace(microsecond=0)


def jitter_delay(key: str, nominal: datetime, jitter: timedelta) -> timedelta:
    """How long the fire of ``key`` at ``nominal`` waits: in ``[0, jitter)``, whole
    milliseconds, the same in every process."""
    span = int(jitter.total_seconds() * 1000)
    if span <= 0:
        return timedelta(0)
    digest = hashlib.sha256(f"{key}|{nominal.astimezone(UTC).isoformat()}".encode()).digest()
    return timedelta(milliseconds=int.from_bytes(digest[:8], "big") % span)


@dataclass(frozen=True)
class ScheduleRule:
    """When a schedule fires: exactly one of ``cron`` (in ``timezone``) and ``interval``.

    Fires whose nominal instant lies in ``[start, end]`` count; ``jitter`` delays each
    (see :func:`jitter_delay`). Build it with :meth:`checked` from user input.
    """

    cron: CronExpression | None = None
    interval: timedelta | None = None
    timezone: str = "UTC"
    start: datetime | None = None
    end: datetime | None = None
    jitter: timedelta = timedelta(0)

    @classmethod
    def checked(
        cls,
        *,
        cron: str | None = None,
        interval: timedelta | None = None,
        timezone: str | None = None,
        start: datetime | None = None,
        end: datetime | None = None,
        jitter: timedelta | None = None,
    ) -> ScheduleRule:
        """A rule from user input; :class:`ScheduleError` with every problem found."""
        problems: list[str] = []
        parsed: CronExpression | None = None
        if (cron is None) == (interval is None):
            problems.append("give exactly one of 'cron' and 'interval'")
        if cron is not None:
            try:
                parsed = parse_cron(cron)
            except ParameterError as exc:
                problems.extend(f"{exc.subject}: {p}" for p in exc.problems)
        if interval is not None and interval < timedelta(seconds=1):
            problems.append("'interval' must be at least 1 second")
        zone = timezone or "UTC"
        try:
            checked_zone(zone)
        except ScheduleError as exc:
            problems.extend(exc.problems)
        for name, value in (("start", start), ("end", end)):
            if value is not None and value.tzinfo is None:
                problems.append(f"'{name}' needs a UTC offset or 'Z'")
            elif value is not None and not instant_in_range(value):
                problems.append(f"'{name}' must be between 1970 and 9000")
        if not problems and start and end and end < start:
            problems.append("'end' is before 'start'")
        if jitter is not None and jitter < timedelta(0):
            problems.append("'jitter' must not be negative")
        for name, span in (("interval", interval), ("jitter", jitter)):
            if span is not None and span > MAX_SPAN:
                problems.append(f"'{name}' must be at most {MAX_SPAN.days} days")
        if problems:
            raise ScheduleError(problems)
        return cls(
            cron=parsed,
            interval=interval,
            timezone=zone,
            start=start.astimezone(UTC) if start else None,
            end=end.astimezone(UTC) if end else None,
            jitter=jitter or timedelta(0),
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def next_after(self, instant: datetime) -> datetime | None:
        """The first nominal fire strictly after ``instant`` (aware), ``None`` after ``end``."""
        instant = instant.astimezone(UTC)
        if instant >= LATEST:
            return None  # nothing fires in the far future (keeps the arithmetic in range)
        if self.start is not None and instant < self.start:
            # the start itself may be a fire: look from just before it
            instant = self.start - timedelta(microseconds=1)
        found = self._interval_after(instant) if self.interval else self._cron_after(instant)
        if found is None or (self.end is not None and found > self.end):
            return None
        return found

    def fires_between(self, after: datetime, until: datetime) -> Iterator[datetime]:
        """Every nominal fire in ``(after, until]``, in order."""
        current = self.next_after(after)
        while current is not None and current <= until:
            yield current
            current = self.next_after(current)

    def describe(self) -> str:
        """``cron '0 17 * * 1-5' in America/New_York`` or ``every 0:15:00``."""
        if self.cron is not None:
            return f"cron {self.cron.text!r} in {self.timezone}"
        return f"every {self.interval}"

    def _interval_after(self, instant: datetime) -> datetime:
        assert self.interval is not None
        anchor = self.start or EPOCH
        if instant < anchor:
            return anchor
        step = self.interval
        count = (instant - anchor) // step + 1
        return anchor + step * count

    def _cron_after(self, instant: datetime) -> datetime | None:
        assert self.cron is not None
        zone = self.zone
        wall = instant.astimezone(zone).replace(tzinfo=None)
        # A wall time may map to an instant at or before ``instant`` (the repeated hour:
        # its wall times already fired at their first occurrence): look further.
        while True:
            candidate = self.cron.next_after(wall)
            if candidate is None:
                return None
            fired = wall_to_instant(candidate, zone)
            if fired > instant:
                return fired
            wall = candidate
