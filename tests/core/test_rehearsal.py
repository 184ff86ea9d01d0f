"""The rehearsal driver's script: how scenario outcomes are read."""

from __future__ import annotations

from datetime import timedelta

import pytest

from treadle.scheduler.rehearsal import Outcome, scripted


def test_outcomes_from_scenario_data() -> None:
    assert Outcome.parse({"result": {"n": 1}}) == Outcome(result={"n": 1})
    assert Outcome.parse(5) == Outcome(result=5)
    assert Outcome.parse({"error": "boom", "seconds": 2}) == Outcome(
        error={"type": "ActionFailed", "message": "boom"}, duration=timedelta(seconds=2)
    )
    assert Outcome.parse({"error": {"type": "X", "message": "m"}}).error == {
        "type": "X",
        "message": "m",
    }
    assert Outcome.parse({"hang": True}).hang


def test_a_mapping_result_without_the_result_key_is_refused() -> None:
    with pytest.raises(ValueError, match=r"not \['n'\]; write a mapping result as"):
        Outcome.parse({"n": 1})


def test_scripts_pick_by_attempt_and_item() -> None:
    script = scripted(
        {
            "flaky": [{"error": "x"}, {"result": "ok"}],
            "each": {"items": [{"result": "a"}, [{"error": "y"}, {"result": "b"}]]},
        }
    )
    assert script("flaky", None, 1, {}).error is not None
    assert script("flaky", None, 2, {}).result == "ok"
    assert script("flaky", None, 9, {}).result == "ok"  # the last one repeats
    assert script("each", 0, 1, {}).result == "a"
    assert script("each", 1, 1, {}).error is not None
    assert script("each", 1, 2, {}).result == "b"
    assert script("each", 7, 1, {}) == Outcome()  # beyond the list: the default, null
    assert script("unscripted", None, 1, {}) == Outcome()
