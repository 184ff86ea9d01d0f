"""What a recorded run hands a new version: its results, answers, outside events and timings.

From the recorded run replayed on its own definition, every outside fact is filed under
what it answered rather than under an id: each attempt's outcome under its
:class:`CallKey` (with how long after the dispatch it came), each inquiry's answer the
same way, each timer's firing under its :class:`TimerKey` (with how long after it was
set), and everything else (the start, operator controls, outside events) at its time
from the start. The driver looks facts up by the new version's keys. Pure.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from treadle.scheduler.core.commands import (
    Command,
    DispatchTask,
    OpenInquiry,
    ScheduleTimer,
    StartChildRun,
)
from treadle.scheduler.core.events import (
    AttemptLost,
    ChildRunPaused,
    Event,
    InquiryAnswered,
    TaskFailed,
    TaskSucceeded,
    TaskTimedOut,
    TimerFired,
)
from treadle.scheduler.core.state import RunState
from treadle.scheduler.version_replay.keys import CallKey, TimerKey, call_key, timer_key
from treadle.scheduler.version_replay.log import RunLog

#: Events that end an attempt, naming it by ``attempt_id``.
OUTCOMES = (TaskSucceeded, TaskFailed, TaskTimedOut, AttemptLost)


@dataclass
class Feed:
    """The recorded run's outside facts, by what they answered."""

    start: datetime
    end: datetime
    outcomes: dict[CallKey, deque[tuple[Event, timedelta]]] = field(
        default_factory=lambda: defaultdict(deque)
    )
    answers: dict[CallKey, tuple[InquiryAnswered, timedelta]] = field(default_factory=dict)
    #: Answers to the run's own (budget) questions, by inquiry id.
    run_answers: dict[str, tuple[InquiryAnswered, timedelta]] = field(default_factory=dict)
    #: Every call the recorded run made (dispatched, child run started), answered or not.
    made: set[CallKey] = field(default_factory=set)
    asked: set[CallKey] = field(default_factory=set)
    timers: dict[TimerKey, deque[timedelta]] = field(default_factory=lambda: defaultdict(deque))
    child_pauses: dict[CallKey, timedelta] = field(default_factory=dict)
    others: list[tuple[timedelta, Event]] = field(default_factory=list)

    def outcome(self, call: CallKey) -> tuple[Event, timedelta] | None:
        """The next recorded outcome of ``call`` (each is handed out once)."""
        queue = self.outcomes.get(call)
        return queue.popleft() if queue else None

    def timer_delay(self, timer: TimerKey) -> timedelta | None:
        queue = self.timers.get(timer)
        return queue.popleft() if queue else None


def feed_of(log: RunLog) -> Feed:
    """The outside facts of the recorded run ``log``."""
    if not log.decided:
        raise ValueError("the recorded run has no events")
    filing = _Filing(Feed(log.decided[0].at, log.decided[-1].at))
    for entry in log.decided:
        filing.event(entry.event, entry.at)
        for command in entry.commands:
            filing.command(entry.after, command, entry.at)
    return filing.feed


@dataclass
class _Filing:
    """Files each fact under its key, remembering what each id named when it was made."""

    feed: Feed
    sent: dict[str, tuple[CallKey, datetime]] = field(default_factory=dict)
    asked: dict[str, tuple[CallKey, datetime]] = field(default_factory=dict)
    children: dict[str, CallKey] = field(default_factory=dict)
    timers: dict[str, tuple[TimerKey, datetime]] = field(default_factory=dict)
    run_asked: dict[str, datetime] = field(default_factory=dict)

    def event(self, event: Event, at: datetime) -> None:
        feed = self.feed
        if isinstance(event, OUTCOMES):
            found = self.sent.get(event.attempt_id)
            if found is not None:
                feed.outcomes[found[0]].append((event, at - found[1]))
        elif isinstance(event, InquiryAnswered):
            found = self.asked.get(event.inquiry_id)
            if found is not None:
                feed.answers[found[0]] = (event, at - found[1])
            elif event.inquiry_id in self.run_asked:  # a run-level (budget) question's
                feed.run_answers[event.inquiry_id] = (
                    event,
                    at - self.run_asked[event.inquiry_id],
                )
        elif isinstance(event, TimerFired):
            timer = self.timers.get(event.timer_id)
            if timer is not None:
                feed.timers[timer[0]].append(at - timer[1])
        elif isinstance(event, ChildRunPaused):
            call = self.children.get(event.child_run_id)
            if call is not None:
                feed.child_pauses[call] = at - feed.start
        else:
            feed.others.append((at - feed.start, event))

    def command(self, state: RunState, command: Command, at: datetime) -> None:
        if isinstance(command, DispatchTask):
            call = self._call(self.sent, state, command.dispatch.attempt_id, at)
            if call is not None:
                self.feed.made.add(call)
        elif isinstance(command, StartChildRun):
            call = self._call(self.sent, state, command.parent_attempt_id, at)
            if call is not None:
                self.feed.made.add(call)
                self.children[command.child_run_id] = call
        elif isinstance(command, OpenInquiry):
            call = self._call(self.asked, state, command.attempt_id, at, command.inquiry_id)
            if call is not None:
                self.feed.asked.add(call)
            else:  # the run's own (budget) question: its id is the same in the new version
                self.run_asked[command.inquiry_id] = at
        elif isinstance(command, ScheduleTimer):
            key = timer_key(state, command.timer_id)
            if key is not None:
                self.timers[command.timer_id] = (key, at)

    @staticmethod
    def _call(
        into: dict[str, tuple[CallKey, datetime]],
        state: RunState,
        attempt_id: str,
        at: datetime,
        under: str | None = None,
    ) -> CallKey | None:
        call = call_key(state, attempt_id)
        if call is not None:
            into[under or attempt_id] = (call, at)
        return call
