"""Live progress of a run on stderr while ``treadle run`` works.

On a terminal it is a rich table redrawn in place (task, status, attempts, items, time);
otherwise (CI logs, pipes) one line per task change. Either way stdout stays clean for the
result, so ``treadle run --json ... | jq`` works.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table

from treadle.common.redaction import redact, secret_values_of
from treadle.common.statuses import TaskStatus
from treadle.scheduler.core.state import Execution, RunState

_MARKS = {
    TaskStatus.SCHEDULED: ("…", "dim"),
    TaskStatus.RUNNING: ("▸", "cyan"),
    TaskStatus.WAITING: ("?", "yellow"),
    TaskStatus.SUCCEEDED: ("✓", "green"),
    TaskStatus.FAILED: ("✗", "red"),
    TaskStatus.TIMED_OUT: ("⏱", "red"),
    TaskStatus.CANCELED: ("-", "dim"),
    TaskStatus.SKIPPED: ("·", "dim"),
    TaskStatus.COMPENSATED: ("↺", "magenta"),
}


def _items(execution: Execution) -> str:
    if not execution.with_items:
        return ""
    return f"{execution.done}/{len(execution.units)}"


def _secrets(state: RunState) -> tuple[str, ...]:
    """Values of the run's secret parameters: never printed, as in the run document."""
    context = state.context
    return secret_values_of([context.parameters.get(name) for name in context.secrets])


def _elapsed(execution: Execution, now: datetime) -> str:
    end = execution.finished_at or now
    return f"{(end - execution.started_at).total_seconds():.2f}s"


class LineProgress:
    """One line per change of a task execution's status (for logs and pipes)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._seen: dict[int, TaskStatus] = {}

    def start(self, run_id: str, workflow: str) -> None:
        self._stream.write(f"run {run_id} of {workflow}\n")
        self._stream.flush()

    def update(self, state: RunState) -> None:
        now = state.finished_at or datetime.now(
            tz=state.created_at.tzinfo if state.created_at else None
        )
        for execution_id in sorted(state.executions):
            execution = state.executions[execution_id]
            if self._seen.get(execution_id) is execution.status:
                continue
            self._seen[execution_id] = execution.status
            mark, _ = _MARKS[execution.status]
            line = f"  {mark} {execution.task} {execution.status.value}"
            if execution.with_items:
                line += f" ({_items(execution)} items)"
            if execution.status.is_terminal:
                line += f" in {_elapsed(execution, now)}"
            if execution.error and execution.status.is_unsuccessful:
                line += f": {redact(execution.error.get('message', ''), _secrets(state))}"
            self._stream.write(line + "\n")
        self._stream.flush()

    def finish(self, state: RunState, *, waiting: bool = False) -> None:
        self.update(state)
        status = "waiting" if waiting else state.status.value
        self._stream.write(f"run {state.run_id} {status}\n")
        self._stream.flush()


class LiveProgress:
    """A table redrawn in place, at most ten times a second."""

    def __init__(self, stream: TextIO) -> None:
        self._console = Console(file=stream)
        self._live = Live(console=self._console, refresh_per_second=10, transient=False)
        self._title = ""
        self._last = 0.0

    def start(self, run_id: str, workflow: str) -> None:
        self._title = f"{workflow}  [dim]{run_id}[/dim]"
        self._live.start()

    def update(self, state: RunState, *, force: bool = False) -> None:
        moment = time.monotonic()
        if not force and moment - self._last < 0.1:
            return
        self._last = moment
        self._live.update(self._table(state))

    def finish(self, state: RunState, *, waiting: bool = False) -> None:
        del waiting  # the table shows each task's status, waiting ones included
        self.update(state, force=True)
        self._live.stop()

    def _table(self, state: RunState) -> Table:
        table = Table(
            title=f"{self._title}  {state.status.value}", title_justify="left", expand=False
        )
        for column in ("task", "status", "attempts", "items", "time"):
            table.add_column(column)
        now = state.finished_at or datetime.now(
            tz=state.created_at.tzinfo if state.created_at else None
        )
        for execution_id in sorted(state.executions):
            execution = state.executions[execution_id]
            mark, style = _MARKS[execution.status]
            attempts = sum(unit.attempt for unit in execution.units)
            table.add_row(
                execution.task,
                f"[{style}]{mark} {execution.status.value}[/{style}]",
                str(attempts) if attempts else "",
                _items(execution),
                _elapsed(execution, now),
            )
        return table


Progress = LineProgress | LiveProgress


def progress_for(stream: TextIO | None = None, *, quiet: bool = False) -> Progress | None:
    target = stream or sys.stderr
    if quiet:
        return None
    if target.isatty():
        return LiveProgress(target)
    return LineProgress(target)
