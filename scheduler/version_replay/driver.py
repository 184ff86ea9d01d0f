"""Feeding a recorded run's facts to another version of its workflow, on a fake clock.

The new definition's core is driven as the services drive it, events in and commands out,
but every outside fact comes from the :class:`Feed`: a dispatch gets the outcome the
recorded run got for the same call (same task, pass, item and attempt) as long after its
dispatch as it came then; an inquiry gets its recorded answer; a timer fires as long
after it was set as the recorded one did (a timer the record never saw fires at its time:
a retry or delay always, a timeout or deadline only within the recorded run's span); the
start, operator controls and outside events come at their recorded times.

A call the record never made is *new*: nothing answers it, so the branch that made
it goes no further (its own timeouts and retries are not fired either), and the replay
goes on with the rest. Pure: no clock, no I/O.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field, replace
from datetime import datetime

from treadle.common.graph import Graph
from treadle.scheduler.core.commands import (
    CancelTimer,
    Command,
    DispatchTask,
    OpenInquiry,
    ScheduleTimer,
    StartChildRun,
)
from treadle.scheduler.core.events import ChildRunPaused, Event, TimerFired
from treadle.scheduler.core.state import RunState, TimerKind, initial_state
from treadle.scheduler.version_replay.feed import OUTCOMES, Feed
from treadle.scheduler.version_replay.keys import CallKey, call_key, timer_key
from treadle.scheduler.version_replay.log import RunLog

#: Events at most, so a version that loops forever on recorded results still ends.
MAX_EVENTS = 100_000
#: Timers that start a call (whose outcome the record has, or which ends its branch):
#: they fire whenever they are due. Timeouts and deadlines the record never saw fire only
#: within the recorded run's span: later, they would invent an outcome nobody observed.
_LEADING_TO_CALLS = frozenset({TimerKind.RETRY, TimerKind.DELAY})


@dataclass
class FedRun:
    """The new version's run, and the calls it made that the record could not answer."""

    log: RunLog
    unanswered: list[tuple[CallKey, datetime]] = field(default_factory=list)


def feed_new_version(
    graph: Graph, feed: Feed, run_id: str, created_at: datetime, version: int | None = None
) -> FedRun:
    """Run ``graph`` on the recorded facts in ``feed``."""
    driver = _Driver(graph, feed, RunLog(initial_state(run_id, graph.ref, created_at, version)))
    for offset, event in feed.others:
        driver.push(feed.start + offset, event)
    for call, offset in feed.child_pauses.items():
        driver.child_pauses[call] = feed.start + offset
    driver.run()
    return FedRun(driver.log, driver.unanswered)


@dataclass
class _Driver:
    graph: Graph
    feed: Feed
    log: RunLog
    unanswered: list[tuple[CallKey, datetime]] = field(default_factory=list)
    child_pauses: dict[CallKey, datetime] = field(default_factory=dict)
    _queue: list[tuple[datetime, int, Event]] = field(default_factory=list)
    _counter: int = 0
    _cancelled: set[str] = field(default_factory=set)
    _dead: set[tuple[str, int]] = field(default_factory=set)  # (task, pass) of new calls

    def push(self, at: datetime, event: Event) -> None:
        self._counter += 1
        heapq.heappush(self._queue, (at, self._counter, event))

    def run(self) -> None:
        for _ in range(MAX_EVENTS):
            if not self._queue:
                return
            at, _, event = heapq.heappop(self._queue)
            if isinstance(event, TimerFired) and event.timer_id in self._cancelled:
                continue
            entry = self.log.apply(self.graph, event, at)
            for command in entry.commands:
                self._follow(entry.after, command, at)
        raise RuntimeError(f"the replay did not settle within {MAX_EVENTS} events")

    def _follow(self, state: RunState, command: Command, now: datetime) -> None:
        if isinstance(command, DispatchTask):
            self._answer(state, command.dispatch.attempt_id, now)
        elif isinstance(command, StartChildRun):
            call = self._answer(state, command.parent_attempt_id, now)
            paused = None if call is None else self.child_pauses.get(call)
            if paused is not None:
                self.push(max(paused, now), ChildRunPaused(child_run_id=command.child_run_id))
        elif isinstance(command, OpenInquiry):
            self._ask(state, command, now)
        elif isinstance(command, ScheduleTimer):
            self._timer(state, command, now)
        elif isinstance(command, CancelTimer):
            self._cancelled.add(command.timer_id)

    def _answer(self, state: RunState, attempt_id: str, now: datetime) -> CallKey | None:
        call = call_key(state, attempt_id)
        if call is None:
            return None
        found = self.feed.outcome(call)
        if found is None:
            if call not in self.feed.made:
                self._new(call, now)
            return call  # else the recorded call never answered: neither does this one
        event, delay = found
        self.push(now + delay, _readdressed(event, attempt_id))
        return call

    def _ask(self, state: RunState, command: OpenInquiry, now: datetime) -> None:
        call = call_key(state, command.attempt_id)
        if call is None:
            run_answer = self.feed.run_answers.get(command.inquiry_id)
            if run_answer is not None:
                self.push(now + run_answer[1], run_answer[0])
            return
        found = self.feed.answers.get(call)
        if found is not None:
            answered, delay = found
            self.push(now + delay, replace(answered, inquiry_id=command.inquiry_id))
        elif call not in self.feed.asked:
            self._new(call, now)

    def _timer(self, state: RunState, command: ScheduleTimer, now: datetime) -> None:
        key = timer_key(state, command.timer_id)
        if key is not None and key[0] != "run" and (key[1], key[2]) in self._dead:
            return  # a timer of a branch that ended for want of a recorded result
        delay = None if key is None else self.feed.timer_delay(key)
        if delay is not None:
            self.push(now + delay, TimerFired(timer_id=command.timer_id))
        elif command.timer_kind in _LEADING_TO_CALLS or command.fire_at <= self.feed.end:
            self.push(command.fire_at, TimerFired(timer_id=command.timer_id))

    def _new(self, call: CallKey, now: datetime) -> None:
        self.unanswered.append((call, now))
        self._dead.add((call.task, call.pass_))


def _readdressed(event: Event, attempt_id: str) -> Event:
    """The recorded outcome ``event`` as the new run's attempt ``attempt_id`` reports it."""
    if isinstance(event, OUTCOMES):
        return replace(event, attempt_id=attempt_id)
    return event
