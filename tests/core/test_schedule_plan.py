"""What happens to due fires: catch-up window, missed policy, overlap policy, with a fake clock.

``treadle.scheduler.core.schedule_plan`` is pure; :class:`Beat` below drives it the way
``scheduler/service/schedule_firing.py`` does (one start per step, then plan again; the
buffer drained when nothing runs), over a world whose runs take a given time and whose
beat may be down for a while. The properties: no fire is recorded twice, and every fire
that came due has an outcome.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from treadle.common.schedules import MissedPolicy, OverlapPolicy, ScheduleRule
from treadle.scheduler.core.schedule_plan import (
    FireAction,
    FireStatus,
    Policies,
    due_fires,
    overlap_action,
    plan_due,
)

T0 = datetime(2026, 6, 1, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def utc_day(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@dataclass
class Beat:
    """A fake beat over a fake world: runs last ``run_length``; ``tick(now)`` is one visit."""

    rule: ScheduleRule
    policies: Policies
    run_length: timedelta
    cursor: datetime = T0
    batch: int = 7
    paused: bool = False
    outcomes: dict[datetime, list[str]] = field(default_factory=dict)
    running: list[tuple[datetime, datetime]] = field(default_factory=list)  # (fire, ends)
    buffered: list[datetime] = field(default_factory=list)
    started: list[tuple[datetime, datetime]] = field(default_factory=list)  # (fire, at)
    most_running: int = 0
    buffered_starts: set[datetime] = field(default_factory=set)

    def _record(self, nominal: datetime, outcome: str) -> None:
        self.outcomes.setdefault(nominal, []).append(outcome)

    def _start(self, nominal: datetime, now: datetime) -> None:
        self.running.append((nominal, now + self.run_length))
        self.started.append((nominal, now))
        self.most_running = max(self.most_running, len(self.running))

    def tick(self, now: datetime) -> None:
        self.running = [(f, end) for f, end in self.running if end > now]
        if not self.running and self.buffered and not self.paused:  # follow_up
            nominal = self.buffered.pop(0)
            self.outcomes[nominal][-1] = "started"
            self.buffered_starts.add(nominal)
            self._start(nominal, now)
        while True:
            fires, beyond = due_fires(
                self.rule, "sch-test", after=self.cursor, now=now, limit=self.batch
            )
            if not fires:
                return
            plan = plan_due(
                fires,
                self.policies,
                now=now,
                beyond=beyond,
                paused=self.paused,
                active=len(self.running),
                buffered=len(self.buffered),
            )
            restart = False
            for entry in plan:
                nominal = entry.fire.nominal
                self.cursor = nominal
                if entry.status is not None:
                    self._record(nominal, entry.status.value)
                elif entry.action is FireAction.SKIP:
                    self._record(nominal, FireStatus.SKIPPED_OVERLAP.value)
                elif entry.action is FireAction.BUFFER:
                    self._record(nominal, FireStatus.BUFFERED.value)
                    self.buffered.append(nominal)
                else:
                    if entry.action is FireAction.START_CANCELLING:
                        self.running = []
                    self._record(nominal, FireStatus.STARTED.value)
                    self._start(nominal, now)
                    restart = True
                    break
            if not restart and beyond is None:
                return


def hourly_beat(**policies: object) -> Beat:
    return Beat(
        ScheduleRule.checked(interval=timedelta(hours=1)),
        Policies(**policies),  # type: ignore[arg-type]
        run_length=timedelta(minutes=10),
    )


def statuses(beat: Beat) -> list[str]:
    return [beat.outcomes[k][-1] for k in sorted(beat.outcomes)]


# -- examples ---------------------------------------------------------------------------------


def test_on_time_fires_start_each_run() -> None:
    beat = hourly_beat()
    for hour in range(1, 5):
        beat.tick(T0 + timedelta(hours=hour, seconds=1))
    assert statuses(beat) == ["started"] * 4


def test_fires_missed_beyond_the_catchup_window_are_skipped_with_the_reason() -> None:
    beat = hourly_beat(catchup_window=timedelta(hours=3), overlap=OverlapPolicy.ALLOW_ALL)
    beat.tick(T0 + timedelta(hours=10, seconds=1))  # beat was down ten hours
    assert statuses(beat) == ["skipped_catchup_window"] * 7 + ["started"] * 3
    fires, _ = due_fires(beat.rule, "k", after=T0, now=at(61), limit=10)
    [planned] = plan_due(fires, Policies(catchup_window=MINUTE), now=at(200))
    assert "beyond the catch-up window" in planned.reason


def test_missed_policy_all_last_and_none() -> None:
    outcomes = {}
    for missed in MissedPolicy:
        beat = hourly_beat(missed=missed, overlap=OverlapPolicy.ALLOW_ALL)
        beat.tick(T0 + timedelta(hours=5, seconds=1))  # fires at 1h..5h; 5h is on time
        outcomes[missed] = statuses(beat)
    assert outcomes[MissedPolicy.ALL] == ["started"] * 5
    assert outcomes[MissedPolicy.LAST] == ["skipped_missed"] * 3 + ["started"] * 2
    assert outcomes[MissedPolicy.NONE] == ["skipped_missed"] * 4 + ["started"]


def test_missed_policy_last_starts_only_the_newest_missed_fire() -> None:
    beat = hourly_beat(missed=MissedPolicy.LAST)
    beat.tick(T0 + timedelta(hours=5, minutes=30))  # every fire is late
    assert statuses(beat) == ["skipped_missed"] * 4 + ["started"]


def test_missed_policy_last_across_batches_keeps_the_newest_overall() -> None:
    beat = hourly_beat(missed=MissedPolicy.LAST)
    beat.batch = 2
    beat.tick(T0 + timedelta(hours=9, minutes=30))
    assert statuses(beat) == ["skipped_missed"] * 8 + ["started"]


def test_overlap_skip_records_the_fire_while_a_run_goes_on() -> None:
    beat = hourly_beat(overlap=OverlapPolicy.SKIP)
    beat.run_length = timedelta(minutes=90)
    for hour in range(1, 6):
        beat.tick(T0 + timedelta(hours=hour, seconds=1))
    assert statuses(beat) == ["started", "skipped_overlap", "started", "skipped_overlap",
                              "started"]  # fmt: skip
    assert beat.most_running == 1


def test_overlap_buffer_one_keeps_one_fire_for_when_the_run_ends() -> None:
    beat = hourly_beat(overlap=OverlapPolicy.BUFFER_ONE)
    beat.run_length = timedelta(minutes=150)
    beat.tick(at(61))  # starts fire 1h
    beat.tick(at(121))  # 2h buffered
    beat.tick(at(181))  # 3h skipped: one is buffered already
    beat.tick(at(212))  # the 1h run ended at 3h31: the buffered 2h fire starts
    assert statuses(beat) == ["started", "started", "skipped_overlap"]
    assert [started for _, started in beat.started] == [at(61), at(212)]


def test_overlap_buffer_all_runs_every_fire_one_after_another() -> None:
    beat = hourly_beat(overlap=OverlapPolicy.BUFFER_ALL)
    beat.run_length = timedelta(minutes=150)
    for minute in range(61, 900, 10):
        beat.tick(at(minute))
    assert set(statuses(beat)) <= {"started", "buffered"}
    assert beat.most_running == 1
    started = [nominal for nominal, _ in beat.started]
    assert started == sorted(started)  # in the order they were due


def test_overlap_cancel_other_cancels_the_running_run() -> None:
    beat = hourly_beat(overlap=OverlapPolicy.CANCEL_OTHER)
    beat.run_length = timedelta(minutes=90)
    beat.tick(at(61))
    assert overlap_action(OverlapPolicy.CANCEL_OTHER, active=1, buffered=0) is (
        FireAction.START_CANCELLING
    )
    beat.tick(at(121))
    assert statuses(beat) == ["started", "started"]
    assert beat.most_running == 1


def test_overlap_cancel_other_starts_only_the_newest_of_a_backlog() -> None:
    beat = hourly_beat(overlap=OverlapPolicy.CANCEL_OTHER)
    beat.tick(T0 + timedelta(hours=4, seconds=1))
    assert statuses(beat) == ["skipped_overlap"] * 3 + ["started"]


def test_overlap_allow_all_starts_runs_side_by_side() -> None:
    beat = hourly_beat(overlap=OverlapPolicy.ALLOW_ALL)
    beat.run_length = timedelta(hours=3)
    for hour in range(1, 5):
        beat.tick(T0 + timedelta(hours=hour, seconds=1))
    assert statuses(beat) == ["started"] * 4
    assert beat.most_running == 3


def test_a_paused_schedule_records_its_due_fires_as_skipped() -> None:
    beat = hourly_beat()
    beat.paused = True
    beat.tick(T0 + timedelta(hours=2, seconds=1))
    assert statuses(beat) == ["skipped_paused"] * 2


def test_a_fire_is_not_due_before_its_jitter_and_later_fires_wait_for_it() -> None:
    rule = ScheduleRule.checked(interval=timedelta(minutes=1), jitter=timedelta(seconds=50))
    fires, _ = due_fires(rule, "sch-j", after=T0, now=at(10), limit=100)
    assert all(f.due_at <= at(10) for f in fires)
    assert [f.nominal for f in fires] == [at(m) for m in range(1, len(fires) + 1)]
    for fire in fires:
        assert fire.nominal <= fire.due_at < fire.nominal + timedelta(seconds=50)


# -- properties --------------------------------------------------------------------------------

POLICIES = st.builds(
    Policies,
    overlap=st.sampled_from(list(OverlapPolicy)),
    catchup_window=st.sampled_from([timedelta(minutes=30), timedelta(hours=5), timedelta(days=3)]),
    missed=st.sampled_from(list(MissedPolicy)),
    late_after=st.sampled_from([timedelta(seconds=30), timedelta(minutes=10)]),
)
RULES = st.one_of(
    st.builds(
        lambda minutes, jitter: ScheduleRule.checked(
            interval=timedelta(minutes=minutes), jitter=timedelta(seconds=jitter)
        ),
        st.integers(min_value=1, max_value=90),
        st.integers(min_value=0, max_value=120),
    ),
    st.builds(
        lambda cron, zone: ScheduleRule.checked(cron=cron, timezone=zone),
        st.sampled_from(["*/7 * * * *", "30 2 * * *", "0 * * * *", "*/20 1-3 * * *"]),
        st.sampled_from(["Europe/Berlin", "America/New_York", "UTC"]),
    ),
)
# minutes between beat visits: usually short, sometimes beat is down for hours
GAPS = st.lists(
    st.one_of(st.floats(min_value=0.01, max_value=3), st.floats(min_value=30, max_value=900)),
    min_size=1,
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(
    rule=RULES,
    policies=POLICIES,
    gaps=GAPS,
    run_minutes=st.integers(min_value=1, max_value=300),
    batch=st.integers(min_value=1, max_value=9),
    start_day=st.sampled_from(
        [datetime(2026, 3, 28, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC), T0]
    ),
)
def test_every_due_fire_gets_exactly_one_outcome(
    rule: ScheduleRule,
    policies: Policies,
    gaps: list[float],
    run_minutes: int,
    batch: int,
    start_day: datetime,
) -> None:
    beat = Beat(rule, policies, run_length=timedelta(minutes=run_minutes), cursor=start_day)
    beat.batch = batch
    now = start_day
    for gap in gaps:
        now += timedelta(minutes=gap)
        beat.tick(now)
    # A fire not yet due holds back the later ones, whatever their jitter (due_fires): with
    # a jitter longer than the interval, a later fire may be past its own due time.
    due = list(
        itertools.takewhile(
            lambda nominal: nominal + _jitter(rule, nominal) <= now,
            rule.fires_between(start_day, now),
        )
    )
    # none twice, none lost: exactly the due fires are recorded, each once
    assert all(len(outcomes) == 1 for outcomes in beat.outcomes.values())
    assert sorted(beat.outcomes) == due
    # a run started only for a fire within the catch-up window when it was planned (a
    # buffered fire waits for the running run, however long that takes)
    for nominal, started_at in beat.started:
        if nominal in beat.buffered_starts:
            continue
        assert started_at - nominal - _jitter(rule, nominal) <= policies.catchup_window
    if policies.overlap in (OverlapPolicy.SKIP, OverlapPolicy.BUFFER_ONE,
                            OverlapPolicy.BUFFER_ALL, OverlapPolicy.CANCEL_OTHER):  # fmt: skip
        assert beat.most_running <= 1
    if policies.overlap is OverlapPolicy.BUFFER_ONE:
        assert len(beat.buffered) <= 1


def _jitter(rule: ScheduleRule, nominal: datetime) -> timedelta:
    from treadle.common.schedules import jitter_delay

    return jitter_delay("sch-test", nominal, rule.jitter)


@settings(max_examples=60, deadline=None)
@given(rule=RULES, gaps=GAPS)
def test_with_allow_all_and_every_missed_fire_kept_each_due_fire_starts_a_run(
    rule: ScheduleRule, gaps: list[float]
) -> None:
    policies = Policies(
        overlap=OverlapPolicy.ALLOW_ALL, catchup_window=timedelta(days=30), missed=MissedPolicy.ALL
    )
    beat = Beat(rule, policies, run_length=MINUTE)
    now = T0
    for gap in gaps:
        now += timedelta(minutes=gap)
        beat.tick(now)
    assert set(statuses(beat)) <= {"started"}
    assert len(beat.started) == len(beat.outcomes)
