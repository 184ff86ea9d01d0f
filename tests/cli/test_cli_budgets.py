"""Budgets on the command line: a run its budget stopped, then ``treadle runs resume ID
--budget cost_usd=N`` (in-process, on SQLite).

A cost budget of 0, given at start over the workflow's 10, stops the run before its first
dispatch, so nothing has to report a cost: the run pauses with the reason, a resume
without a higher limit is refused (exit 2, nothing changed), and a resume with a higher
one runs the run to its end; the audit log keeps the new limit with the resume. (Bad
``--budget`` values: ``tests/common/test_budget_fields.py``.)
"""

from __future__ import annotations

from typing import Any

FROZEN = """\
ref: cli.frozen
budget: {cost_usd: 10}
tasks:
  - name: only
    action: core.noop
"""


def test_a_run_its_budget_stopped_resumes_with_a_higher_limit(treadle: Any) -> None:
    treadle.write("frozen.yaml", FROZEN)
    paused = treadle("run", "frozen.yaml", "-q", "--budget", "cost_usd=0", code=3)
    last = paused.stderr.splitlines()[-1]
    run_id = last.split()[1]
    assert last == (
        f"run {run_id} paused: stopped by its cost_usd budget (spent 0.00 USD of the 0.00 USD "
        f"cost budget); resume it with a higher limit: treadle runs resume {run_id} "
        "--budget cost_usd=..."
    )
    why = treadle("runs", "why", run_id, code=0).stdout
    assert "  the run: stopped by its cost_usd budget: spent 0.00 USD" in why

    refused = treadle("runs", "resume", run_id, code=2)
    assert refused.stderr.startswith(
        "error: the run stopped on its cost_usd budget (spent 0.00 USD of the 0.00 USD cost "
        "budget); resume it with a higher limit, e.g. --budget cost_usd="
    )

    done = treadle("runs", "resume", run_id, "--budget", "cost_usd=5", "--json", "-q", code=0)
    document = done.json()
    assert document["status"] == "succeeded"
    assert document["budget"] == {
        "limits": {"cost_usd": 5.0},
        "spent": {"cost_usd": 0.0, "attempts": 1, "items": 0},
        "stopped": None,
    }
    resumes = treadle("audit", "list", "--action", "run.resume", "--json", code=0).json()
    assert [r["outcome"] for r in reversed(resumes)] == ["refused", "ok"]
    assert resumes[1]["details"]["error"].startswith("the run stopped on its cost_usd budget")
    assert resumes[0]["details"] == {"budget": {"cost_usd": 5.0}}
