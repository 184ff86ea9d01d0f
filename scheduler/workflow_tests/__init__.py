"""Workflow tests: runs rehearsed from data against the pure core, checked against
expectations, for the project's scenario files and for users' packs (``treadle test``).

* :class:`RunScript` / :func:`rehearse_script` (``scripted_run``): a run from data;
* :func:`differences` (``expectations``): what an ``expect`` block finds wrong;
* :func:`read_test_file` (``tests_file``): a pack's ``tests/test_workflows.yaml``, every
  problem located by file, line and field;
* :func:`run_workflow_tests` (``runner``): each test's result.

No action runs, nothing is stored. Pure.
"""

from __future__ import annotations

from treadle.scheduler.workflow_tests.expectations import EXPECT_KEYS, differences
from treadle.scheduler.workflow_tests.runner import TestResult, run_workflow_tests
from treadle.scheduler.workflow_tests.scripted_run import (
    CONTROLS,
    RunScript,
    parse_control,
    rehearse_script,
)
from treadle.scheduler.workflow_tests.tests_file import WorkflowTest, read_test_file

__all__ = [
    "CONTROLS",
    "EXPECT_KEYS",
    "RunScript",
    "TestResult",
    "WorkflowTest",
    "differences",
    "parse_control",
    "read_test_file",
    "rehearse_script",
    "run_workflow_tests",
]
