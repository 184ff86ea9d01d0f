"""A failing run, then ``treadle runs list`` and ``treadle runs show`` over the same database."""

from __future__ import annotations

import re
from typing import Any

FAILING = """\
ref: demo.failing
tasks:
  - name: prepare
    action: core.echo
    input: {message: ready}
    next:
      - when: "{{ succeeded() }}"
        do: [explode]
  - name: explode
    action: core.fail
    input: {message: the disk is full}
"""


def test_a_failed_run_then_listing_and_showing_runs(treadle: Any) -> None:
    succeeded = treadle("run", "examples.hello_world", "--json", "-q", code=0).json()

    treadle.write("failing.yaml", FAILING)
    failing = treadle("run", "failing.yaml", code=1)
    assert failing.stdout == ""
    assert "  ✗ explode failed in " in failing.stderr
    last = failing.stderr.splitlines()[-1]
    found = re.fullmatch(r"run (r-[0-9a-f]+) failed: task 'explode' failed: the disk is full", last)
    assert found, failing.stderr
    failed_id = found.group(1)

    listed = treadle("runs", "list", code=0)
    lines = listed.stdout.splitlines()
    assert [line.split()[:3] for line in lines] == [  # newest first
        [failed_id, "failed", "demo.failing"],
        [succeeded["id"], "succeeded", "examples.hello_world"],
    ]

    only_failed = treadle("runs", "list", "--status", "failed", "--json", code=0).json()
    assert [(r["id"], r["workflow"], r["status"]) for r in only_failed] == [
        (failed_id, "demo.failing", "failed")
    ]
    assert set(only_failed[0]) == {
        "id",
        "workflow",
        "status",
        "created_at",
        "finished_at",
        "parent_run",
    }

    shown = treadle("runs", "show", succeeded["id"], code=0).json()
    assert shown == succeeded  # the same document `run --json` printed

    missing = treadle("runs", "show", "r-0000", code=2)
    assert missing.stderr.strip() == "error: no run r-0000"
