"""``attune/simple-workflow.yaml``: validates, runs to ``succeeded``, and its output carries
the stub's transformed text (whitespace collapsed, upper-cased when ``uppercase`` is true)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from treadle.common.catalog import Catalog
from treadle.common.loader import load_workflow_file
from treadle.common.validate import validate_workflow

MESSAGE = "  Hello,   conformance\tworld "


def test_it_validates_without_a_single_issue(attune: Path, catalog: Catalog) -> None:
    spec = load_workflow_file(str(attune / "simple-workflow.yaml"))
    assert validate_workflow(spec, catalog, strict=True) == []


def test_it_runs_to_succeeded_with_the_transformed_text(
    attune: Path, catalog: Catalog, make_driver: Any
) -> None:
    spec = load_workflow_file(str(attune / "simple-workflow.yaml"))
    driver = make_driver(catalog)

    loud = driver.start(spec, {"message": MESSAGE, "uppercase": True})
    assert loud.status == "succeeded", loud.document["error"]
    assert loud.task_names() == ["log_input", "process_message", "finalize"]
    assert loud.task("process_message")["result"]["text"] == "HELLO, CONFORMANCE WORLD"
    assert loud.document["output"] == {
        "original": MESSAGE,
        "processed": "HELLO, CONFORMANCE WORLD",
        "final": "Workflow complete. Result: HELLO, CONFORMANCE WORLD",
    }
    # `publish: timestamp: "{{ system.workflow_start }}"` on the first transition
    state = driver.runner.state_of(loud.run_id)
    assert state.vars["timestamp"] == loud.document["started_at"]
    assert state.vars["processed_message"] == "HELLO, CONFORMANCE WORLD"

    quiet = driver.start(spec, {"message": MESSAGE})  # uppercase defaults to false
    assert quiet.status == "succeeded", quiet.document["error"]
    assert quiet.document["parameters"] == {"message": MESSAGE, "uppercase": False}
    assert quiet.document["output"]["processed"] == "Hello, conformance world"
