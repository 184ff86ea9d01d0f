"""The run events in the log of an embedded run (SQLite, the real worker pool).

One run with a secret parameter goes through every event of the Attune plan: an
immediate retry and a delayed one, published variables, a failure handled by a
transition, the end. The test reads the records of ``treadle.runs`` and the JSON lines
they make: the events in order, each with run, workflow, task, attempt and trace id, and
the secret value in none of them (the flaky actions put it in their errors, a transition
publishes it as a variable).
"""

from __future__ import annotations

import json
import logging
import textwrap
from pathlib import Path
from typing import Any

import pytest

from treadle.common.loader import load_packs
from treadle.common.log_format import LogFormat, LogFormatter
from treadle.common.trace_ids import trace_id_of
from treadle.scheduler.service.run_log import RUN_LOGGER

TOKEN = "tok-Vq8LmZ3rPw"

PACK = {
    "pack.yaml": "ref: logtest\nversion: '1.0.0'\n",
    "actions/flaky.yaml": """
        name: flaky
        runner_type: python
        entry_point: actions.py:flaky
        parameters:
          marker: {type: string, required: true}
          token: {type: string, required: true}
    """,
    "actions/actions.py": """
        from pathlib import Path


        def flaky(marker, token):
            path = Path(marker)
            if not path.exists():
                path.write_text("tried")
                raise ConnectionError(f"no answer for {token}")
            return {"ok": True}
    """,
}

FLOW = """\
ref: logtest.flow
parameters:
  token: {type: string, secret: true, required: true}
  folder: {type: string, required: true}
vars:
  greeting: hello
tasks:
  - name: flaky_now
    action: logtest.flaky
    input: {marker: "{{ parameters.folder }}/now", token: "{{ parameters.token }}"}
    retry: {count: 2, delay: 0}
    next:
      - when: "{{ succeeded() }}"
        do: [flaky_later]
  - name: flaky_later
    action: logtest.flaky
    input: {marker: "{{ parameters.folder }}/later", token: "{{ parameters.token }}"}
    retry: {count: 2, delay: 1}
    next:
      - when: "{{ succeeded() }}"
        publish:
          - copied: "{{ parameters.token }}"
          - answer: 42
        do: [doomed]
  - name: doomed
    action: core.fail
    input: {message: "refused {{ parameters.token }}"}
    next:
      - when: "{{ failed() }}"
        do: [recover]
  - name: recover
    action: core.noop
"""


@pytest.fixture
def logtest(harness: Any, tmp_path: Path) -> Any:
    root = tmp_path / "packs"
    for name, text in PACK.items():
        path = root / "logtest" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip(), encoding="utf-8")
    loaded = load_packs([root])
    assert [str(issue) for issue in loaded.issues] == []
    harness.catalog.actions.update(loaded.actions)
    return harness


def test_a_run_logs_each_event_with_its_ids_and_never_the_secret(
    logtest: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    harness = logtest
    spec = harness.workflow(FLOW)
    runner = harness.runner()
    with caplog.at_level(logging.INFO, logger=RUN_LOGGER):
        run_id, followed = harness.run(runner, spec, {"token": TOKEN, "folder": str(tmp_path)})
    assert followed.state.status.value == "succeeded"

    records = [r for r in caplog.records if r.name == RUN_LOGGER and r.run == run_id]  # type: ignore[attr-defined]
    seen = [(r.event, getattr(r, "task", None), getattr(r, "attempt", None)) for r in records]  # type: ignore[attr-defined]
    assert seen == [
        ("workflow.start", None, None),
        ("workflow.vars.publish", None, None),
        ("workflow.task.schedule", "flaky_now", 1),
        ("workflow.task.retry", "flaky_now", 2),
        ("workflow.task.schedule", "flaky_now", 2),
        ("workflow.task.complete", "flaky_now", 2),
        ("workflow.task.schedule", "flaky_later", 1),
        ("workflow.task.retry", "flaky_later", 2),
        ("workflow.task.schedule", "flaky_later", 2),
        ("workflow.task.complete", "flaky_later", 2),
        ("workflow.vars.publish", "flaky_later", None),
        ("workflow.task.schedule", "doomed", 1),
        ("workflow.task.failed", "doomed", 1),
        ("workflow.task.schedule", "recover", 1),
        ("workflow.task.complete", "recover", 1),
        ("workflow.complete", None, None),
    ]

    formatter = LogFormatter(LogFormat.JSON)
    lines = [json.loads(formatter.format(r)) for r in records]
    trace = trace_id_of(run_id)
    for line in lines:
        assert line["run"] == run_id
        assert line["workflow"] == "logtest.flow"
        assert line["trace_id"] == trace
        if line["event"] not in ("workflow.start", "workflow.vars.publish", "workflow.complete"):
            assert line["task"]
            assert line["attempt"] >= 1
    by_event: dict[str, list[dict[str, Any]]] = {}
    for line in lines:
        by_event.setdefault(line["event"], []).append(line)
    assert [v["vars"] for v in by_event["workflow.vars.publish"]] == [
        ["greeting"],
        ["copied", "answer"],
    ]
    now, later = by_event["workflow.task.retry"]
    assert (now["delay_s"], now["error_type"]) == (0, "ConnectionError")
    assert later["delay_s"] == 1
    assert later["level"] == "warning"
    assert now["error"] == "no answer for ***"
    [failed] = by_event["workflow.task.failed"]
    assert failed["level"] == "error"
    assert failed["error_type"] == "ActionFailed"
    assert "***" in failed["error"]
    for done in by_event["workflow.task.complete"]:
        assert done["status"] == "succeeded"
        assert done["duration_s"] >= 0
    [end] = by_event["workflow.complete"]
    assert end["status"] == "succeeded"
    assert end["duration_s"] >= 1
    assert by_event["workflow.start"][0]["version"] >= 1

    every_line = "\n".join(formatter.format(r) for r in records)
    assert TOKEN not in every_line
    assert TOKEN not in "\n".join(LogFormatter(LogFormat.LOGFMT).format(r) for r in records)


ITEMS_FLOW = """\
ref: logtest.items
tasks:
  - name: each
    action: core.echo
    with_items: "{{ range(5) | list }}"
    input: {message: "item {{ item }}"}
"""


def test_a_with_items_task_is_one_line_at_info_and_one_per_item_at_debug(
    harness: Any, caplog: pytest.LogCaptureFixture
) -> None:
    spec = harness.workflow(ITEMS_FLOW)
    runner = harness.runner()
    with caplog.at_level(logging.INFO, logger=RUN_LOGGER):
        run_id, _ = harness.run(runner, spec)
    at_info = [(r.event, getattr(r, "items", None)) for r in caplog.records if r.run == run_id]  # type: ignore[attr-defined]
    assert at_info == [
        ("workflow.start", None),
        ("workflow.task.schedule", 5),
        ("workflow.task.complete", 5),
        ("workflow.complete", None),
    ]
    caplog.clear()
    with caplog.at_level(logging.DEBUG, logger=RUN_LOGGER):
        run_id, _ = harness.run(runner, spec)
    items = [
        r.item  # type: ignore[attr-defined]
        for r in caplog.records
        if r.run == run_id and r.event == "workflow.task.schedule" and r.levelno == logging.DEBUG  # type: ignore[attr-defined]
    ]
    assert sorted(items) == [0, 1, 2, 3, 4]
