"""Cron expressions: parsing 5- and 6-field forms and finding the next matching wall time.

Schedules (``docs/schedules.md``) and YAML validation both need to know whether a cron
expression is valid and when it next matches, without I/O, so the parser lives in
``common`` and works on naive *local wall times* only; turning wall times into instants
(daylight saving gaps and repeats) is :mod:`treadle.common.schedules`.

Five fields are ``minute hour day-of-month month day-of-week``; six put ``second`` first
(Quartz, Attune's ``core.crontimer``). Each field takes ``*``, ``?`` (as ``*``), numbers,
ranges ``a-b``, steps ``*/n``, ``a/n``, ``a-b/n`` and comma lists; months and weekdays take
English names (``jan``, ``mon``); weekday ``7`` is Sunday like ``0``. When both the day of
month and the day of week are restricted, a day matching either matches (Vixie cron).
Macros: ``@yearly`` ``@annually`` ``@monthly`` ``@weekly`` ``@daily`` ``@midnight``
``@hourly``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Final

from treadle.common.errors import ParameterError

__all__ = ["CronError", "CronExpression", "parse_cron"]

MACROS: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS: Final = (
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "oct",
    "nov",
    "dec",
)
_DAYS: Final = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
#: How far ahead a search goes before saying the expression never matches (Feb 29 on a
#: Monday recurs within 28 years).
_HORIZON_YEARS: Final = 30


class CronError(ParameterError):
    """A cron expression that cannot be parsed; the message says which field and why."""

    def __init__(self, expression: str, problem: str) -> None:
        super().__init__([problem], subject=f"cron expression {expression!r}")


@dataclass(frozen=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_base: int = 0


_SECOND = _Field("second", 0, 59)
_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DOM = _Field("day of month", 1, 31)
_MONTH = _Field("month", 1, 12, _MONTHS, 1)
_DOW = _Field("day of week", 0, 7, _DAYS, 0)


@dataclass(frozen=True)
class CronExpression:
    """A parsed cron expression: the allowed values of each field.

    ``dom_any`` and ``dow_any`` record whether the day fields were ``*``, which decides
    how they combine (both restricted: either matches).
    """

    text: str
    seconds: frozenset[int]
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int]
    months: frozenset[int]
    weekdays: frozenset[int]  # 0 = Sunday
    dom_any: bool
    dow_any: bool

    def day_matches(self, day: datetime) -> bool:
        """Whether the date of ``day`` is one the expression fires on."""
        if day.month not in self.months:
            return False
        in_month = day.day in self.days
        in_week = (day.isoweekday() % 7) in self.weekdays
        if self.dom_any or self.dow_any:
            return in_month and in_week
        return in_month or in_week

    def matches(self, wall: datetime) -> bool:
        """Whether the wall time ``wall`` (seconds included) matches every field."""
        return (
            self.day_matches(wall)
            and wall.hour in self.hours
            and wall.minute in self.minutes
            and wall.second in self.seconds
        )

    def next_after(self, wall: datetime) -> datetime | None:
        """The first matching wall time strictly after ``wall`` (naive), or ``None`` when
        there is none within 30 years (``0 0 30 2 *``)."""
        candidate = wall.replace(microsecond=0) + timedelta(seconds=1)
        limit = wall.replace(tzinfo=None) + timedelta(days=366 * _HORIZON_YEARS)
        while candidate <= limit:
            if not self.day_matches(candidate):
                day = candidate.replace(hour=0, minute=0, second=0) + timedelta(days=1)
                candidate = self._next_month_start(day) if day.month != candidate.month else day
                continue
            if candidate.hour not in self.hours:
                candidate = candidate.replace(minute=0, second=0) + timedelta(hours=1)
                continue
            if candidate.minute not in self.minutes:
                candidate = candidate.replace(second=0) + timedelta(minutes=1)
                continue
            if candidate.second not in self.seconds:
                later = [s for s in self.seconds if s > candidate.second]
                if later:
                    candidate = candidate.replace(second=min(later))
                else:
                    candidate = candidate.replace(second=0) + timedelta(minutes=1)
                continue
            return candidate
        return None

    def _next_month_start(self, day: datetime) -> datetime:
        """``day`` (the first of a month) or the first of the next allowed month."""
        while day.month not in self.months:
            year, month = (day.year + 1, 1) if day.month == 12 else (day.year, day.month + 1)
            day = day.replace(year=year, month=month, day=1)
        return day


def parse_cron(text: str) -> CronExpression:
    """The expression in ``text``; :class:`CronError` naming the field that is wrong."""
    if not isinstance(text, str) or not text.strip():
        raise CronError(str(text), "it is empty")
    source = text.strip()
    expanded = MACROS.get(source.lower(), source)
    if expanded.startswith("@"):
        raise CronError(source, f"unknown macro {expanded!r} (known: {', '.join(MACROS)})")
    parts = expanded.split()
    if len(parts) not in (5, 6):
        raise CronError(
            source,
            f"it has {len(parts)} field(s); write 5 (minute hour day month weekday) or 6 "
            "(second first)",
        )
    if len(parts) == 5:
        parts = ["0", *parts]
    values = [
        _parse_field(source, part, spec)
        for part, spec in zip(parts, (_SECOND, _MINUTE, _HOUR, _DOM, _MONTH, _DOW), strict=True)
    ]
    weekdays = frozenset(0 if day == 7 else day for day in values[5])
    return CronExpression(
        text=source,
        seconds=values[0],
        minutes=values[1],
        hours=values[2],
        days=values[3],
        months=values[4],
        weekdays=weekdays,
        dom_any=parts[3] in ("*", "?"),
        dow_any=parts[5] in ("*", "?"),
    )


def _parse_field(source: str, part: str, spec: _Field) -> frozenset[int]:
    found: set[int] = set()
    for item in part.split(","):
        found.update(_parse_item(source, item, spec))
    return frozenset(found)


def _parse_item(source: str, item: str, spec: _Field) -> range:
    where = f"the {spec.name} field"
    if not item:
        raise CronError(source, f"{where} has an empty list item")
    base, _, step_text = item.partition("/")
    step = 1
    if step_text:
        if not step_text.isdigit() or int(step_text) < 1:
            raise CronError(source, f"{where}: step {step_text!r} must be a positive number")
        step = int(step_text)
    if base in ("*", "?"):
        return range(spec.low, spec.high + 1, step)
    low_text, dash, high_text = base.partition("-")
    low = _value(source, low_text, spec)
    high = _value(source, high_text, spec) if dash else (spec.high if step_text else low)
    if high < low:
        raise CronError(source, f"{where}: range {base!r} runs backwards")
    return range(low, high + 1, step)


def _value(source: str, text: str, spec: _Field) -> int:
    lowered = text.lower()
    if lowered in spec.names:
        return spec.names.index(lowered) + spec.name_base
    if not text.isdigit():
        raise CronError(source, f"the {spec.name} field: {text!r} is not a number")
    value = int(text)
    if not spec.low <= value <= spec.high:
        raise CronError(source, f"the {spec.name} field: {value} is outside {spec.low}-{spec.high}")
    return value
