"""Identifiers the core hands out are pure functions of the run, so replays reproduce them."""

from __future__ import annotations

import uuid

import pytest

from treadle.scheduler.core.ids import (
    AttemptRef,
    attempt_id,
    child_run_id,
    derived_uuid,
    execution_timer_id,
    inquiry_id,
    parse_attempt_id,
    run_timer_id,
    unit_timer_id,
)


@pytest.mark.parametrize(
    ("run_id", "execution", "position", "attempt"),
    [("r-1", 1, 0, 1), ("runs/with/slashes", 12, 345, 6), ("r.child.1.0.1", 3, 0, 2)],
)
def test_attempt_id_round_trips(run_id: str, execution: int, position: int, attempt: int) -> None:
    value = attempt_id(run_id, execution, position, attempt)
    assert parse_attempt_id(value) == AttemptRef(run_id, execution, position, attempt)


@pytest.mark.parametrize(
    "value", ["", "r-1", "r-1/1/0", "r-1/x/0/1", "r-1/1/-1/1", "r-1/1/0/one", "1/2/3"]
)
def test_text_that_is_not_an_attempt_id_parses_to_none(value: str) -> None:
    assert parse_attempt_id(value) is None


def test_ids_are_deterministic_and_distinct() -> None:
    assert child_run_id("r", 2, 3, 1) == child_run_id("r", 2, 3, 1) == "r.2.3.1"
    assert inquiry_id("r", 2, 3, 1) == inquiry_id("r", 2, 3, 1)
    assert inquiry_id("r", 2, 3, 1).startswith("iq_")
    inquiries = {inquiry_id("r", e, p, a) for e in (1, 2) for p in (0, 1) for a in (1, 2)}
    assert len(inquiries) == 8
    assert inquiry_id("r", 1, 0, 1) != inquiry_id("s", 1, 0, 1)
    timers = {
        unit_timer_id("retry", "r", 1, 0, 1),
        unit_timer_id("timeout", "r", 1, 0, 1),
        unit_timer_id("retry", "r", 1, 0, 2),
        execution_timer_id("delay", "r", 1),
        run_timer_id("deadline", "r"),
    }
    assert len(timers) == 5
    assert unit_timer_id("retry", "r", 1, 0, 1) == "r/1/0/1/retry"


def test_a_timer_id_is_not_taken_for_an_attempt_id() -> None:
    assert parse_attempt_id(unit_timer_id("retry", "r", 1, 0, 1)) is None


def test_derived_uuid_is_a_version_4_uuid_that_depends_on_seed_run_and_counter() -> None:
    value = derived_uuid(7, "r", 1)
    assert value == derived_uuid(7, "r", 1)
    assert uuid.UUID(value).version == 4
    others = {derived_uuid(8, "r", 1), derived_uuid(7, "s", 1), derived_uuid(7, "r", 2)}
    assert value not in others
    assert len(others) == 3
