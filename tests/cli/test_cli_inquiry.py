"""The inquiry cycle as a user goes through it: a run waits (exit 3), someone answers.

An answer that breaks the inquiry's schema is refused (exit 2) and leaves the run exactly
as it was; a valid one continues the run to its end; a second answer is refused.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, tzinfo
from typing import Any

import pytest


def test_run_waits_then_an_answer_continues_it(treadle: Any) -> None:
    waiting = treadle("run", "examples.inquiry", code=3)
    assert waiting.stdout == ""
    found = re.search(r"inquiry (iq_[0-9a-f]+) \(task ask_approval\)", waiting.stderr)
    assert found, waiting.stderr
    inquiry_id = found.group(1)
    run_id = re.search(r"run (r-[0-9a-f]+) is waiting", waiting.stderr).group(1)  # type: ignore[union-attr]
    assert f"treadle inquiry respond {inquiry_id} --data" in waiting.stderr

    listed = treadle("inquiry", "list", code=0)
    assert listed.stdout.splitlines() == [
        f"{inquiry_id}  pending    run {run_id}  task ask_approval (for ops): "
        "Deploy version 1.2.3 to production?"
    ]

    before = treadle("runs", "show", run_id, code=0).json()
    assert before["status"] == "running"
    assert [(t["name"], t["status"]) for t in before["tasks"]] == [("ask_approval", "waiting")]
    assert before["inquiries"][0]["status"] == "pending"

    refused = treadle("inquiry", "respond", inquiry_id, "--data", '{"approved": "yes"}', code=2)
    assert refused.stdout == ""
    assert refused.stderr.splitlines() == [
        "error: the answer does not fit the inquiry's schema:",
        "  response['approved']: 'yes' is not of type 'boolean'",
    ]
    assert treadle("runs", "show", run_id, code=0).json() == before

    answer = '{"approved": true, "comment": "ship it"}'
    answered = treadle("inquiry", "respond", inquiry_id, "--data", answer, "--json", code=0)
    document = answered.json()
    assert document["id"] == run_id
    assert document["status"] == "succeeded"
    assert document["output"] == {"decision": "approved"}
    assert [(t["name"], t["status"]) for t in document["tasks"]] == [
        ("ask_approval", "succeeded"),
        ("deploy", "succeeded"),
    ]
    given = {"approved": True, "comment": "ship it"}
    assert document["tasks"][0]["result"] == {**given, "response": given}
    assert document["inquiries"][0]["status"] == "answered"

    again = treadle("inquiry", "respond", inquiry_id, "--data", '{"approved": false}', code=2)
    assert again.stderr.strip() == f"error: inquiry {inquiry_id} is answered, not pending"


class _TwoHoursLater(datetime):
    """The embedded runner's clock two hours on: past any deadline the test set."""

    @classmethod
    def now(cls, tz: tzinfo | None = None) -> datetime:  # type: ignore[override]
        return datetime.now(tz) + timedelta(hours=2)


def test_an_answer_after_the_deadline_is_refused_and_the_run_goes_on(
    treadle: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    treadle.write(
        "late.yaml",
        """\
        ref: demo.late
        tasks:
          - name: ask
            action: core.ask
            input: {prompt: "quick?", schema: {type: object}, timeout: 3600}
            next:
              - when: "{{ timed_out() }}"
                do: [too_late]
          - name: too_late
            action: core.echo
            input: {message: nobody answered}
        """,
    )
    waiting = treadle("run", "late.yaml", code=3)  # the run does not wait for a person
    inquiry_id = re.search(r"inquiry (iq_[0-9a-f]+)", waiting.stderr).group(1)  # type: ignore[union-attr]
    run_id = re.search(r"run (r-[0-9a-f]+) is waiting", waiting.stderr).group(1)  # type: ignore[union-attr]

    # The answer comes after the hour's deadline (the runner's clock moved on, not the test
    # waiting it out): a deadline short enough to wait for could pass before `run` returns.
    monkeypatch.setattr("treadle.embedded.runner.datetime", _TwoHoursLater)
    late = treadle("inquiry", "respond", inquiry_id, "--data", "{}", code=2)
    assert late.stderr.splitlines() == [
        f"error: inquiry {inquiry_id} is timed_out, not pending",
        f"run {run_id} went on without the answer: succeeded",
    ]
