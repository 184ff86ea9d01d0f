"""Running a pack's workflow tests: each rehearsed, each expectation checked.

A test passes when every key of its ``expect`` holds; a failing test lists each
difference (``status: expected succeeded, got failed (...)``). A workflow that does not
settle (a loop the results never end) fails with that message rather than hanging.
Pure: no actions run, nothing is stored.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from treadle.common.errors import TreadleError
from treadle.common.source import Loc
from treadle.scheduler.workflow_tests.expectations import differences
from treadle.scheduler.workflow_tests.scripted_run import rehearse_script
from treadle.scheduler.workflow_tests.tests_file import WorkflowTest


@dataclass(frozen=True)
class TestResult:
    """One test's outcome: its name, where it is written, and what did not hold."""

    __test__ = False  # not a pytest class

    name: str
    loc: Loc
    problems: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.problems


def run_workflow_tests(tests: Iterable[WorkflowTest]) -> list[TestResult]:
    """Rehearse each test and check its expectations."""
    results: list[TestResult] = []
    for test in tests:
        try:
            record = rehearse_script(test.graph, test.script)
        except (RuntimeError, TreadleError) as exc:
            results.append(TestResult(test.name, test.loc, (f"the run did not settle: {exc}",)))
            continue
        results.append(TestResult(test.name, test.loc, tuple(differences(record, test.expect))))
    return results
