"""Fixtures for the worker tests: actions built as specs, a fake clock, fresh runners."""

from __future__ import annotations

import textwrap
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from treadle.common.catalog import Catalog
from treadle.common.messages import TaskDispatch, TaskResult
from treadle.common.spec import ActionSpec, ParameterSpec, RunnerType
from treadle.worker.execute import RunnerSettings, execute
from treadle.worker.runners import new_runners
from treadle.worker.runners.base import Runner

FLAT_EXTRAS = ("required", "secret", "default", "description")


def flat_parameters(params: Mapping[str, Mapping[str, Any]] | None) -> tuple[ParameterSpec, ...]:
    """ParameterSpecs from the flat YAML style (``{type, required, default, ...}``)."""
    return tuple(
        ParameterSpec(
            name=name,
            schema_={k: v for k, v in spec.items() if k not in FLAT_EXTRAS},
            required=bool(spec.get("required", False)),
            secret=bool(spec.get("secret", False)),
            has_default="default" in spec,
            default=spec.get("default"),
            description=spec.get("description"),
        )
        for name, spec in (params or {}).items()
    )


class FakeClock:
    """Returns 2024-01-01T00:00:00Z, then one second later on each call."""

    def __init__(self) -> None:
        self.now = datetime(2024, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        current = self.now
        self.now += timedelta(seconds=1)
        return current


class Worker:
    """Runs dispatches through the real :func:`execute` against a catalog of test actions."""

    def __init__(self, settings: RunnerSettings | None = None) -> None:
        self.catalog = Catalog()
        self.settings = settings or RunnerSettings(worker_name="test-worker:1")
        self.runners: dict[RunnerType, Runner] = new_runners()
        self.clock = FakeClock()
        self._attempts = 0

    def add(self, action: ActionSpec) -> ActionSpec:
        self.catalog.actions[action.ref] = action
        return action

    def dispatch(
        self, ref: str, payload: dict[str, Any] | None = None, **fields: Any
    ) -> TaskDispatch:
        self._attempts += 1
        return TaskDispatch(
            attempt_id=f"run-1/task/{self._attempts}",
            run_id="run-1",
            task="task",
            execution=1,
            attempt=1,
            action_ref=ref,
            input=payload or {},
            **fields,
        )

    def run(self, ref: str, payload: dict[str, Any] | None = None, **fields: Any) -> TaskResult:
        return execute(
            self.dispatch(ref, payload, **fields),
            self.catalog,
            self.settings,
            clock=self.clock,
            runners=self.runners,
        )


@pytest.fixture
def worker() -> Worker:
    return Worker()


PythonActionFactory = Callable[..., ActionSpec]


@pytest.fixture
def python_action(tmp_path: Path, worker: Worker) -> PythonActionFactory:
    """Write ``source`` to ``<tmp>/<file>`` and register an action calling ``function`` in it."""

    def make(
        source: str,
        *,
        function: str = "main",
        file: str = "action.py",
        ref: str = "tests.action",
        parameters: Mapping[str, Mapping[str, Any]] | None = None,
        enabled: bool = True,
    ) -> ActionSpec:
        path = tmp_path / file
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
        return worker.add(
            ActionSpec(
                ref=ref,
                runner_type=RunnerType.PYTHON,
                entry_point=f"{file}:{function}",
                parameters=flat_parameters(parameters),
                base_dir=str(tmp_path),
                enabled=enabled,
            )
        )

    return make


@pytest.fixture
def make_worker() -> Callable[..., Worker]:
    """A worker with other settings: ``make_worker(shell_enabled=True)``."""

    def make(**settings: Any) -> Worker:
        return Worker(RunnerSettings(**{"worker_name": "test-worker:1", **settings}))

    return make


@pytest.fixture
def flat_params() -> Callable[..., tuple[ParameterSpec, ...]]:
    return flat_parameters
