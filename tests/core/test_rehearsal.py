"""The rehearsal driver's script: how scenario outcomes are read."""

from __future__ import annotations

from datetime import timedelta

import pytest

from treadle.scheduler.rehearsal import ScriptedOutcome, scripted


def test_outcomes_from_scenario_data() -> None:
    assert ScriptedOutcome.parse({"result": {"n": 1}}) == ScriptedOutcome(result={"n": 1})
    assert ScriptedOutcome.parse(5) == ScriptedOutcome(result=5)
    assert ScriptedOutcome.parse({"error": "boom", "seconds": 2}) == ScriptedOutcome(
        error={"type": "ActionFailed", "message": "boom"}, duration=timedelta(seconds=2)
    )
    assert ScriptedOutcome.parse({"error": {"type": "X", "message": "m"}}).error == {
        "type": "X",
        "message": "m",
    }
    assert ScriptedOutcome.parse({"hang": True}).hang


def test_a_mapping_result_without_the_result_key_is_refused() -> None:
    with pytest.raises(ValueError, match=r"not \['n'\]; write a mapping result as"):
        ScriptedOutcome.parse({"n": 1})


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
    assert script("each", 7, 1, {}) == ScriptedOutcome()  # beyond the list: the default, null
    assert script("unscripted", None, 1, {}) == ScriptedOutcome()
