"""``treadle runs purge``: what it removes, --dry-run, --status, and its input errors."""

from __future__ import annotations

from typing import Any


def test_purge_dry_run_status_filter_then_removing_the_ended_runs(treadle: Any) -> None:
    succeeded = treadle("run", "examples.hello_world", "--json", "-q", code=0).json()

    young = treadle("runs", "purge", "--older-than", "1d", code=0)
    assert young.stdout.startswith("removed 0 run(s) ended before ")

    dry = treadle("runs", "purge", "--older-than", "0s", "--dry-run", "--json", code=0).json()
    assert dry["dry_run"] is True
    assert dry["runs"] == [succeeded["id"]]
    assert dry["rows"]["runs"] == 1
    assert dry["rows"]["run_events"] >= 1
    listed = treadle("runs", "list", "--json", code=0).json()
    assert [r["id"] for r in listed] == [succeeded["id"]]  # nothing changed

    failed_only = treadle("runs", "purge", "--older-than", "0s", "--status", "failed", code=0)
    assert failed_only.stdout.startswith("removed 0 run(s)")

    done = treadle("runs", "purge", "--older-than", "0s", "--status", "succeeded", code=0)
    first = done.stdout.splitlines()[0]
    assert first.startswith("removed 1 run(s) ended before ")
    assert "runs 1" in first
    assert "run_events " in first
    assert treadle("runs", "list", "--json", code=0).json() == []
    treadle("runs", "show", succeeded["id"], code=2)


def test_bad_input_names_the_option(treadle: Any) -> None:
    cases = {
        ("--older-than", "30"): "--older-than '30': give a unit",
        ("--older-than", "soon"): "--older-than 'soon': expected a duration",
        ("--older-than", "1d", "--status", "running"): "--status running: only ended runs",
        ("--older-than", "1d", "--status", "nope"): "--status 'nope' is not a run status",
    }
    for args, message in cases.items():
        result = treadle("runs", "purge", *args, code=2)
        assert message in result.stderr, result
    missing = treadle("runs", "purge", code=2)
    assert "--older-than" in missing.stderr
    small = treadle("runs", "purge", "--older-than", "1d", "--batch-size", "0", code=2)
    assert "--batch-size" in small.stderr
