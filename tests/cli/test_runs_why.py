"""``treadle runs why ID``: a waiting run says what it waits for, in words and as JSON."""

from __future__ import annotations

import re
from typing import Any


def test_a_run_waiting_on_a_person_says_which_inquiry_and_for_whom(treadle: Any) -> None:
    waiting = treadle("run", "examples.inquiry", code=3)
    run_id = re.search(r"run (r-[0-9a-f]+) is waiting", waiting.stderr).group(1)  # type: ignore[union-attr]
    inquiry_id = re.search(r"inquiry (iq_[0-9a-f]+)", waiting.stderr).group(1)  # type: ignore[union-attr]

    said = treadle("runs", "why", run_id, code=0)
    assert said.stdout.splitlines() == [
        f"run {run_id} is running:",
        f"  ask_approval: waits for inquiry {inquiry_id} (assigned to ops)",
    ]
    [reason] = treadle("runs", "why", run_id, "--json", code=0).json()
    assert (reason["task"], reason["reason"], reason["details"]) == (
        "ask_approval",
        "inquiry",
        {"inquiry": inquiry_id},
    )
    assert treadle("runs", "show", run_id, code=0).json()["why"] == [reason]


def test_an_ended_run_waits_for_nothing_and_an_unknown_one_is_refused(treadle: Any) -> None:
    done = treadle("run", "examples.hello_world", "-p", "name=Ada", "--json", "-q", code=0)
    run_id = done.json()["id"]
    assert treadle("runs", "why", run_id, code=0).stdout.strip() == (
        f"run {run_id} is succeeded: nothing waits"
    )
    missing = treadle("runs", "why", "r-0000000000000000", code=2)
    assert "no run r-0000000000000000" in missing.stderr
