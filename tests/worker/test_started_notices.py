"""The worker's ``started`` notices: sent at once, or late from one thread per process.

Late notices come due in the order they were announced (one delay for all), so a
notice announced after a withdrawn one arriving proves the withdrawn one will never come.
"""

from __future__ import annotations

import os
import select
import signal
import threading
from datetime import UTC, datetime

import pytest

from treadle.common.messages import AttemptStarted, WorkerReport
from treadle.worker.reports import ReportNotPublished
from treadle.worker.started_notice import StartedNotices

AT = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
#: Short enough to keep the tests quick; the order, not the time, is what they check.
DELAY = 0.02


def notice(attempt: str) -> WorkerReport:
    return WorkerReport.of(AttemptStarted(attempt_id=attempt, worker="w@host", at=AT))


class Sink:
    """Records what was published; ``failing`` attempts raise as a lost broker would."""

    def __init__(self, failing: frozenset[str] = frozenset()) -> None:
        self.sent: list[str] = []
        self.failing = failing
        self._arrived = threading.Condition()

    def publish(self, report: WorkerReport) -> None:
        assert report.started is not None
        attempt = report.started.attempt_id
        if attempt in self.failing:
            raise ReportNotPublished(f"the started notice of {attempt} was not published")
        with self._arrived:
            self.sent.append(attempt)
            self._arrived.notify_all()

    def wait_for(self, attempt: str) -> list[str]:
        with self._arrived:
            assert self._arrived.wait_for(lambda: attempt in self.sent, timeout=10)
            return list(self.sent)


def test_without_a_delay_the_notice_leaves_before_the_action_runs() -> None:
    sink = Sink()
    withdraw = StartedNotices(sink, 0).announce(notice("a/t/0/1"))
    assert sink.sent == ["a/t/0/1"]
    withdraw()  # nothing left to withdraw
    assert sink.sent == ["a/t/0/1"]


def test_without_a_delay_a_notice_that_cannot_be_published_fails_the_task() -> None:
    with pytest.raises(ReportNotPublished):
        StartedNotices(Sink(failing=frozenset({"a/t/0/1"})), 0).announce(notice("a/t/0/1"))


def test_a_withdrawn_notice_never_leaves_and_a_slow_attempts_does() -> None:
    sink = Sink()
    notices = StartedNotices(sink, DELAY)
    withdraw_fast = notices.announce(notice("fast/t/0/1"))
    withdraw_fast()  # the action ended before the delay
    notices.announce(notice("slow/t/0/1"))
    notices.announce(notice("slower/t/0/1"))
    assert sink.wait_for("slower/t/0/1") == ["slow/t/0/1", "slower/t/0/1"]


def test_notices_keep_coming_after_an_idle_spell_and_after_a_failed_publish() -> None:
    sink = Sink(failing=frozenset({"lost/t/0/1"}))
    notices = StartedNotices(sink, DELAY)
    notices.announce(notice("first/t/0/1"))
    sink.wait_for("first/t/0/1")  # the queue is empty again: the thread waits for work
    notices.announce(notice("lost/t/0/1"))  # only logged: the result still reports
    notices.announce(notice("second/t/0/1"))
    assert sink.wait_for("second/t/0/1") == ["first/t/0/1", "second/t/0/1"]


def test_one_thread_serves_every_late_notice_of_a_process() -> None:
    sink = Sink()
    notices = StartedNotices(sink, DELAY)
    before = threading.active_count()
    for n in range(50):
        notices.announce(notice(f"r{n}/t/0/1"))
    assert threading.active_count() == before + 1
    assert sink.wait_for("r49/t/0/1") == [f"r{n}/t/0/1" for n in range(50)]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_forked_pool_child_sends_its_notices_from_its_own_thread() -> None:
    """Prefork pool children are forked after the worker started: the parent's thread is
    not in the child, which starts its own on its first late notice."""
    read_end, write_end = os.pipe()

    class PipeSink:
        def publish(self, report: WorkerReport) -> None:
            assert report.started is not None
            os.write(write_end, report.started.attempt_id.encode() + b"\n")

    notices = StartedNotices(PipeSink(), DELAY)
    notices.announce(notice("parent/t/0/1"))  # the parent's thread exists before the fork
    pid = os.fork()
    if pid == 0:  # the child: announce one, wait to be stopped, exit without cleanup
        try:
            notices.announce(notice("child/t/0/1"))
            threading.Event().wait(30)
        finally:
            os._exit(0)
    received = b""
    try:
        while not (b"child/t/0/1" in received and b"parent/t/0/1" in received):
            ready, _, _ = select.select([read_end], [], [], 10)
            assert ready, f"notices did not arrive; got {received!r}"
            received += os.read(read_end, 4096)
    finally:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        os.close(read_end)
        os.close(write_end)
    assert sorted(received.split()) == [b"child/t/0/1", b"parent/t/0/1"]


class CountingCondition(threading.Condition):
    """A condition that counts how often a waiter was woken."""

    def __init__(self) -> None:
        super().__init__(threading.Lock())
        self.notified = 0

    def notify(self, n: int = 1) -> None:
        self.notified += 1
        super().notify(n)


def test_announcing_wakes_the_thread_only_once_it_has_gone_idle() -> None:
    """A wake-up per task cost more than most notices: after sending, the thread looks
    again within a delay by itself, so fast tasks announcing and withdrawing meanwhile
    wake nobody; only a thread that went idle (a whole delay with nothing to send) is
    woken, once."""
    delay = 0.5  # the fast tasks below must all fit within one delay, even on a slow machine
    sink = Sink()
    notices = StartedNotices(sink, delay)
    wakes = CountingCondition()
    notices._ready = wakes  # before the thread exists
    notices.announce(notice("first/t/0/1"))  # starts the thread
    sink.wait_for("first/t/0/1")  # the queue is empty now
    for n in range(20):
        withdraw = notices.announce(notice(f"fast{n}/t/0/1"))
        withdraw()
    assert wakes.notified == 0

    idle = threading.Event()
    while not idle.wait(delay / 10):  # about one delay
        with wakes:
            if notices._idle:
                idle.set()
    notices.announce(notice("after-idle/t/0/1"))
    notices.announce(notice("next/t/0/1"))
    assert sink.wait_for("next/t/0/1") == ["first/t/0/1", "after-idle/t/0/1", "next/t/0/1"]
    assert wakes.notified == 1
