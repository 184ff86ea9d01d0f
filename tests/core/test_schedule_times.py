"""When schedules fire: cron parsing, daylight saving at both transitions, intervals, jitter.

Pure arithmetic with explicit instants (no clock): ``treadle.common.cron`` and
``treadle.common.schedules``. The DST rule under test (docs/schedules.md): a wall time
that does not exist fires once, at the first instant after the gap; one that happens
twice fires once, at its first occurrence; intervals count absolute time.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from treadle.common.cron import CronError, parse_cron
from treadle.common.schedules import ScheduleError, ScheduleRule, jitter_delay

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def local(fires: list[datetime], zone: ZoneInfo) -> list[str]:
    return [f.astimezone(zone).isoformat() for f in fires]


def fires(rule: ScheduleRule, after: datetime, until: datetime) -> list[datetime]:
    return list(rule.fires_between(after, until))


# -- cron parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "empty"),
        ("* * * *", "4 field(s)"),
        ("61 * * * *", "minute field: 61 is outside 0-59"),
        ("* 24 * * *", "hour field: 24 is outside 0-23"),
        ("* * 0 * *", "day of month field: 0 is outside 1-31"),
        ("* * * 13 *", "month field: 13 is outside 1-12"),
        ("* * * * 8", "day of week field: 8 is outside 0-7"),
        ("*/0 * * * *", "step '0' must be a positive number"),
        ("5-1 * * * *", "range '5-1' runs backwards"),
        ("x * * * *", "'x' is not a number"),
        ("@sometimes", "unknown macro"),
    ],
)
def test_a_bad_cron_expression_names_the_field_and_why(text: str, problem: str) -> None:
    with pytest.raises(CronError) as raised:
        parse_cron(text)
    assert problem in str(raised.value)


def test_fields_lists_ranges_steps_names_and_macros() -> None:
    cron = parse_cron("0 17 * * MON-fri")
    assert (cron.minutes, cron.hours, cron.weekdays) == ({0}, {17}, {1, 2, 3, 4, 5})
    assert parse_cron("*/15 * * * *").minutes == {0, 15, 30, 45}
    assert parse_cron("5-20/5,59 * * * *").minutes == {5, 10, 15, 20, 59}
    assert parse_cron("0 0 * jan,JUL 7").weekdays == {0}  # 7 is Sunday too
    assert parse_cron("@daily").text == "@daily"
    assert parse_cron("@hourly").minutes == {0}
    six = parse_cron("30 0 22,0,2,4 * * *")  # seconds first (Attune's crontimer)
    assert (six.seconds, six.minutes, six.hours) == ({30}, {0}, {0, 2, 4, 22})


def test_day_of_month_and_day_of_week_both_restricted_match_either() -> None:
    cron = parse_cron("0 0 13 * 5")  # the 13th, and every Friday
    found = []
    wall = datetime(2026, 2, 1)
    for _ in range(6):
        nxt = cron.next_after(wall)
        assert nxt is not None
        found.append(nxt.day)
        wall = nxt
    assert found == [6, 13, 20, 27, 6, 13]  # Feb 2026: Fridays 6, 13, 20, 27


def test_an_expression_that_never_matches_has_no_next_fire() -> None:
    assert parse_cron("0 0 30 2 *").next_after(datetime(2026, 1, 1)) is None
    rule = ScheduleRule.checked(cron="0 0 30 2 *")
    assert rule.next_after(utc(2026, 1, 1)) is None


# -- daylight saving ---------------------------------------------------------------------------


def test_berlin_spring_forward_a_missing_time_fires_once_after_the_gap() -> None:
    rule = ScheduleRule.checked(cron="30 2 * * *", timezone="Europe/Berlin")
    got = fires(rule, utc(2026, 3, 27), utc(2026, 3, 31))
    assert local(got, BERLIN) == [
        "2026-03-27T02:30:00+01:00",
        "2026-03-28T02:30:00+01:00",
        "2026-03-29T03:00:00+02:00",  # 02:30 does not exist: the first instant after the gap
        "2026-03-30T02:30:00+02:00",
    ]


def test_berlin_spring_forward_every_quarter_hour_collapses_the_gap_into_one_fire() -> None:
    rule = ScheduleRule.checked(cron="*/15 * * * *", timezone="Europe/Berlin")
    got = fires(rule, utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 1, 30))
    assert local(got, BERLIN) == [
        "2026-03-29T01:45:00+01:00",
        "2026-03-29T03:00:00+02:00",  # 02:00, 02:15, 02:30, 02:45 and 03:00: once
        "2026-03-29T03:15:00+02:00",
        "2026-03-29T03:30:00+02:00",
    ]


def test_berlin_fall_back_a_repeated_time_fires_at_its_first_occurrence() -> None:
    rule = ScheduleRule.checked(cron="30 2 * * *", timezone="Europe/Berlin")
    got = fires(rule, utc(2026, 10, 24), utc(2026, 10, 27))
    assert local(got, BERLIN) == [
        "2026-10-24T02:30:00+02:00",
        "2026-10-25T02:30:00+02:00",  # 02:30 happens twice: the first (CEST) only
        "2026-10-26T02:30:00+01:00",
    ]


def test_new_york_both_transitions_at_the_repeated_and_missing_hours() -> None:
    spring = ScheduleRule.checked(cron="30 2 * * *", timezone="America/New_York")
    assert local(fires(spring, utc(2026, 3, 7), utc(2026, 3, 10)), NEW_YORK) == [
        "2026-03-07T02:30:00-05:00",
        "2026-03-08T03:00:00-04:00",
        "2026-03-09T02:30:00-04:00",
    ]
    fall = ScheduleRule.checked(cron="*/20 1 * * *", timezone="America/New_York")
    assert local(fires(fall, utc(2026, 11, 1, 4), utc(2026, 11, 1, 8)), NEW_YORK) == [
        "2026-11-01T01:00:00-04:00",
        "2026-11-01T01:20:00-04:00",
        "2026-11-01T01:40:00-04:00",  # the second 01:xx (EST) does not fire again
    ]


def test_weekday_five_pm_in_new_york_keeps_its_wall_time_across_the_change() -> None:
    rule = ScheduleRule.checked(cron="0 17 * * 1-5", timezone="America/New_York")
    got = fires(rule, utc(2026, 3, 5), utc(2026, 3, 11))
    assert local(got, NEW_YORK) == [
        "2026-03-05T17:00:00-05:00",
        "2026-03-06T17:00:00-05:00",
        "2026-03-09T17:00:00-04:00",
        "2026-03-10T17:00:00-04:00",
    ]


def test_an_interval_counts_absolute_time_through_daylight_saving() -> None:
    rule = ScheduleRule.checked(
        interval=timedelta(hours=1), timezone="Europe/Berlin", start=utc(2026, 10, 24, 23)
    )
    got = fires(rule, utc(2026, 10, 24, 23), utc(2026, 10, 25, 3))
    assert [b - a for a, b in itertools.pairwise(got)] == [timedelta(hours=1)] * 3
    assert local(got, BERLIN)[:3] == [
        "2026-10-25T02:00:00+02:00",
        "2026-10-25T02:00:00+01:00",  # the repeated hour is an hour of real time: it fires
        "2026-10-25T03:00:00+01:00",
    ]


ZONES = st.sampled_from(["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "UTC"])
CRONS = st.sampled_from(
    ["*/15 * * * *", "30 2 * * *", "0 * * * *", "0 0,1,2,3 * * *", "45 1 * * 0", "0 17 * * 1-5"]
)


@settings(max_examples=60, deadline=None)
@given(
    zone=ZONES,
    cron=CRONS,
    start=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 1)),
)
def test_fires_are_strictly_increasing_and_each_instant_appears_once(
    zone: str, cron: str, start: datetime
) -> None:
    rule = ScheduleRule.checked(cron=cron, timezone=zone)
    begin = start.replace(tzinfo=UTC)
    got = fires(rule, begin, begin + timedelta(days=9))
    assert got == sorted(set(got))
    assert all(f > begin for f in got)
    # every fire is one the expression asks for: its wall time matches, or it ends a gap
    parsed = parse_cron(cron)
    for fire in got:
        wall = fire.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
        before = (fire - timedelta(seconds=1)).astimezone(ZoneInfo(zone)).utcoffset()
        assert parsed.matches(wall) or before != fire.astimezone(ZoneInfo(zone)).utcoffset()


@settings(max_examples=40, deadline=None)
@given(zone=ZONES, cron=CRONS, split=st.integers(min_value=1, max_value=5000))
def test_asking_in_pieces_gives_the_same_fires_as_asking_once(
    zone: str, cron: str, split: int
) -> None:
    rule = ScheduleRule.checked(cron=cron, timezone=zone)
    begin, end = utc(2026, 3, 20), utc(2026, 4, 5)
    middle = begin + timedelta(minutes=split * 3)
    assert fires(rule, begin, end) == fires(rule, begin, middle) + fires(rule, middle, end)


# -- start, end, jitter ------------------------------------------------------------------------


def test_start_and_end_bound_the_fires_inclusively() -> None:
    rule = ScheduleRule.checked(cron="0 * * * *", start=utc(2026, 1, 1, 3), end=utc(2026, 1, 1, 5))
    assert fires(rule, utc(2026, 1, 1), utc(2026, 1, 2)) == [
        utc(2026, 1, 1, 3),
        utc(2026, 1, 1, 4),
        utc(2026, 1, 1, 5),
    ]
    assert rule.next_after(utc(2026, 1, 1, 5)) is None


def test_an_interval_is_anchored_at_its_start_else_the_epoch() -> None:
    anchored = ScheduleRule.checked(interval=timedelta(minutes=7), start=utc(2026, 1, 1, 0, 3))
    assert anchored.next_after(utc(2026, 1, 1)) == utc(2026, 1, 1, 0, 3)
    assert anchored.next_after(utc(2026, 1, 1, 0, 3)) == utc(2026, 1, 1, 0, 10)
    hourly = ScheduleRule.checked(interval=timedelta(hours=1))
    assert hourly.next_after(utc(2026, 1, 1, 10, 59, 59)) == utc(2026, 1, 1, 11)


def test_jitter_is_the_same_for_a_key_and_differs_between_fires() -> None:
    nominal = utc(2026, 1, 1, 12)
    spread = timedelta(minutes=5)
    first = jitter_delay("sch-1", nominal, spread)
    assert first == jitter_delay("sch-1", nominal, spread)  # every beat computes this
    assert timedelta(0) <= first < spread
    others = {jitter_delay("sch-1", nominal + timedelta(hours=h), spread) for h in range(20)}
    assert len(others) > 10
    assert jitter_delay("sch-1", nominal, timedelta(0)) == timedelta(0)


def test_bad_schedules_report_every_problem() -> None:
    with pytest.raises(ScheduleError) as raised:
        ScheduleRule.checked(
            cron="61 * * * *",
            interval=timedelta(minutes=1),
            timezone="Mars/Olympus",
            start=datetime(2026, 1, 1),
        )
    text = str(raised.value)
    for problem in ("exactly one of 'cron' and 'interval'", "61 is outside", "Mars/Olympus",
                    "'start' needs a UTC offset"):  # fmt: skip
        assert problem in text
    with pytest.raises(ScheduleError, match="'end' is before 'start'"):
        ScheduleRule.checked(interval=timedelta(1), start=utc(2026, 2, 1), end=utc(2026, 1, 1))


def test_far_away_bounds_are_refused_and_the_far_future_has_no_fires() -> None:
    with pytest.raises(ScheduleError, match="'start' must be between 1970 and 9000"):
        ScheduleRule.checked(cron="@daily", start=datetime(1, 1, 1, tzinfo=UTC))
    with pytest.raises(ScheduleError, match="'interval' must be at most 3650 days"):
        ScheduleRule.checked(interval=timedelta(days=4000))
    rule = ScheduleRule.checked(cron="@daily")
    assert rule.next_after(datetime(9500, 1, 1, tzinfo=UTC)) is None
