"""The runners a worker has, by the ``runner_type`` they serve.

``inquiry`` and ``workflow`` actions never reach a worker: the scheduler asks a person or
starts a child run for them, so they have no runner here.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache

from treadle.common.spec import RunnerType
from treadle.worker.runners.base import ActionCall, Runner, RunnerSettings
from treadle.worker.runners.http import HttpRunner
from treadle.worker.runners.python import PythonRunner
from treadle.worker.runners.shell import ShellRunner

__all__ = [
    "ActionCall",
    "HttpRunner",
    "PythonRunner",
    "Runner",
    "RunnerSettings",
    "ShellRunner",
    "default_runners",
    "new_runners",
]


def new_runners() -> dict[RunnerType, Runner]:
    """A fresh registry (its own cache of loaded Python action modules)."""
    return {
        RunnerType.PYTHON: PythonRunner(),
        RunnerType.SHELL: ShellRunner(),
        RunnerType.HTTP: HttpRunner(),
    }


@cache
def default_runners() -> Mapping[RunnerType, Runner]:
    """The process-wide registry: Python action modules load once per process."""
    return new_runners()
