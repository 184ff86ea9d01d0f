"""``treadle emergency-stop on|off|status`` as a user runs it, on a SQLite file: what each
says, what it refuses (and why), and the audit log. What schedulers then do with the runs:
``tests/store/test_emergency_stop.py`` and ``tests/distributed/faults/test_emergency_stop.py``.
"""

from __future__ import annotations

from typing import Any

from treadle.common.settings import os_login


def _audit(treadle: Any) -> list[tuple[str, str, str]]:
    entries = treadle("audit", "list", "--json", code=0).json()
    return [
        (e["action"], e["target"], e["outcome"])
        for e in reversed(entries)
        if e["action"].startswith("emergency_stop.")
    ]


def test_on_status_and_off_say_what_holds_and_are_audited(treadle: Any) -> None:
    on = treadle("emergency-stop", "on", "--reason", "bad deploy", code=0)
    assert on.stdout.startswith("emergency stop (global) since 20")
    assert f"by cli:{os_login()}: bad deploy" in on.stdout
    assert "running attempts finish" in on.stdout
    assert "lift it with: treadle emergency-stop off" in on.stdout

    again = treadle("emergency-stop", "on", "--reason", "other", "--terminate", code=0)
    assert "holds already; kept; running attempts are terminated too" in again.stdout
    [shown] = treadle("emergency-stop", "status", "--json", code=0).json()["stops"]
    assert (shown["scope"], shown["reason"], shown["terminate"], shown["source"]) == (
        "global", "bad deploy", True, "command"
    )  # fmt: skip
    assert "global" in treadle("emergency-stop", "status", code=0).stdout

    off = treadle("emergency-stop", "off", "--reason", "rolled back", code=0)
    assert off.stdout == "emergency stop (global) lifted: schedulers resume the runs it paused\n"
    assert treadle("emergency-stop", "status", code=0).stdout == "no emergency stop holds\n"
    [lifted] = treadle("emergency-stop", "status", "--all", "--json", code=0).json()["stops"]
    assert (lifted["lifted_by"], lifted["lift_reason"]) == (f"cli:{os_login()}", "rolled back")

    refused = treadle("emergency-stop", "off", code=2)
    assert "no emergency stop holds globally" in refused.stderr
    assert _audit(treadle) == [
        ("emergency_stop.on", "global", "ok"),
        ("emergency_stop.on", "global", "ok"),
        ("emergency_stop.off", "global", "ok"),
        ("emergency_stop.off", "global", "refused"),
    ]


def test_a_workspace_stop_is_lifted_by_its_workspace_only(treadle: Any) -> None:
    treadle("emergency-stop", "on", "--reason", "noisy", "--workspace", "team-a", code=0)
    wrong = treadle("emergency-stop", "off", "--workspace", "team-b", code=2)
    assert "no emergency stop holds workspace team-b" in wrong.stderr
    assert "no emergency stop holds globally" in treadle("emergency-stop", "off", code=2).stderr
    off = treadle("emergency-stop", "off", "--workspace", "team-a", code=0)
    assert off.stdout.startswith("emergency stop (workspace:team-a) lifted")


def test_a_reason_is_required_and_the_setting_wins_over_off(treadle: Any) -> None:
    assert "--reason" in treadle("emergency-stop", "on", code=2).stderr
    blank = treadle("emergency-stop", "on", "--reason", "  ", code=2)
    assert "a reason is needed (--reason)" in blank.stderr
    treadle("emergency-stop", "on", "--reason", "audit", code=0)

    treadle.env["TREADLE_EMERGENCY_STOP"] = "frozen"
    pinned = treadle("emergency-stop", "off", code=2)
    assert "TREADLE_EMERGENCY_STOP is set here" in pinned.stderr
    assert treadle("emergency-stop", "status", "--json", code=0).json()["setting"] == "frozen"
    del treadle.env["TREADLE_EMERGENCY_STOP"]
    treadle("emergency-stop", "off", code=0)
    assert _audit(treadle)[-2:] == [
        ("emergency_stop.off", "global", "refused"),
        ("emergency_stop.off", "global", "ok"),
    ]
