"""``treadle runs watch ID``: a run as a live tree until it ends.

The tree is the run, its task executions (status, attempts, items done, time), the tasks
of each parallel block indented under the block, and each child run as a sub-tree under
the task that started it. The watcher only reads the database (it never moves the run):
each look costs one version query per run in the tree, and only runs whose version
changed are loaded again. On a terminal the tree is redrawn in place (rich ``Live``);
otherwise (logs, pipes) one line is printed per change of a run or an execution. It stops
when the top-level run ends, or on Ctrl-C (the run goes on).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, TextIO

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.tree import Tree

from treadle.cli.progress import _MARKS as MARKS
from treadle.clientlib.polling import Look, poll
from treadle.common.redaction import redact, secret_values_of
from treadle.common.statuses import RunStatus, TaskStatus
from treadle.scheduler.core.state import ROOT_SCOPE, Execution, RunState
from treadle.scheduler.service.why import explain, gather_facts
from treadle.scheduler.store import Store, UnitOfWork

if TYPE_CHECKING:
    pass

#: Child runs are shown this deep at most.
MAX_DEPTH = 32

_RUN_STYLES = {
    RunStatus.SUCCEEDED: "green",
    RunStatus.FAILED: "red",
    RunStatus.TIMED_OUT: "red",
    RunStatus.CANCELED: "dim",
    RunStatus.PAUSING: "yellow",
    RunStatus.PAUSED: "yellow",
    RunStatus.COMPENSATING: "magenta",
    RunStatus.COMPENSATED: "magenta",
}


@dataclass(frozen=True)
class RunSnapshot:
    """A run's state and the snapshots of the child runs its tasks started, by run id."""

    state: RunState
    children: Mapping[str, RunSnapshot] = field(default_factory=dict)
    #: What each unfinished execution waits for (``treadle runs why``), by execution id.
    why: Mapping[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Row:
    """One line of the tree: its depth, what it describes, and how it looks.

    ``signature`` changes exactly when the line's content changes in a way worth a new
    line in line mode (status, attempts, items done), not when only the time moves.
    """

    depth: int
    key: str
    text: str
    markup: str
    signature: tuple[object, ...]


class TreeLoader:
    """Reads a run and its child runs, reloading only the runs whose version changed."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._cache: dict[str, tuple[int, RunState]] = {}
        self._why: dict[str, dict[int, str]] = {}

    def load(self, run_id: str) -> tuple[RunSnapshot, bool]:
        """The tree under ``run_id`` and whether anything in it changed since the last look.

        Raises NotFound when ``run_id`` does not exist.
        """
        changed = [False]
        with self._store.snapshot() as uow:

            def snapshot(current: str, depth: int) -> RunSnapshot | None:
                version = uow.run_version(current)
                if version is None:
                    return None  # a child whose start is still in flight
                cached = self._cache.get(current)
                if cached is None or cached[0] != version:
                    cached = (version, uow.load_run(current))
                    self._cache[current] = cached
                    changed[0] = True
                state = cached[1]
                why = _why(uow, state)
                if why != self._why.get(current):
                    self._why[current] = why
                    changed[0] = True
                children: dict[str, RunSnapshot] = {}
                if depth < MAX_DEPTH:
                    for child_id in _child_run_ids(state):
                        child = snapshot(child_id, depth + 1)
                        if child is not None:
                            children[child_id] = child
                return RunSnapshot(state, children, why)

            root = snapshot(run_id, 0)
        if root is None:
            from treadle.common.errors import NotFound

            raise NotFound(f"run {run_id} not found")
        return root, changed[0]


def _why(uow: UnitOfWork, state: RunState) -> dict[int, str]:
    """Each unfinished execution's reasons, in words (nothing for an ended run)."""
    if state.status.is_terminal:
        return {}
    said: dict[int, list[str]] = {}
    for reason in explain(state, gather_facts(uow, state)):
        if reason.execution is not None:
            said.setdefault(reason.execution, []).append(reason.message)
    return {execution: "; ".join(messages) for execution, messages in said.items()}


def _child_run_ids(state: RunState) -> Iterator[str]:
    for execution_id in sorted(state.executions):
        for unit in state.executions[execution_id].units:
            if unit.child_run_id is not None:
                yield unit.child_run_id


# -- rows -----------------------------------------------------------------------------------


def rows(snapshot: RunSnapshot, now: datetime, depth: int = 0) -> Iterator[Row]:
    """The tree as rows, depth first: the run, then its tasks with their sub-trees."""
    state = snapshot.state
    yield _run_row(state, depth)
    secrets = _secrets(state)
    nested: dict[int, list[Execution]] = {}
    for execution_id in sorted(state.executions):
        execution = state.executions[execution_id]
        nested.setdefault(execution.scope, []).append(execution)

    def block(scope: int, level: int) -> Iterator[Row]:
        for execution in nested.get(scope, []):
            yield _task_row(state, execution, level, now, secrets, snapshot.why.get(execution.id))
            yield from block(execution.id, level + 1)
            for unit in execution.units:
                child = snapshot.children.get(unit.child_run_id or "")
                if child is not None:
                    yield from rows(child, now, level + 1)

    yield from block(ROOT_SCOPE, depth + 1)


def _run_row(state: RunState, depth: int) -> Row:
    status = state.status
    text = f"run {state.run_id}  {state.workflow}"
    if state.definition_version is not None:
        text += f" v{state.definition_version}"
    detail = status.value
    if state.deferred and status in (RunStatus.PAUSING, RunStatus.PAUSED):
        detail += f" ({len(state.deferred)} held back)"
    if state.compensation:
        detail += f" ({len(state.compensation)} more to undo)"
    if state.error and status in (RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.CANCELED):
        message = redact(str(state.error.get("message", "")), _secrets(state))
        detail += f": {message}" if message else ""
    style = _RUN_STYLES.get(status, "cyan")
    return Row(
        depth=depth,
        key=state.run_id,
        text=f"{text}  {detail}",
        markup=f"[bold]{escape(text)}[/bold]  [{style}]{escape(detail)}[/{style}]",
        signature=(status, len(state.deferred), len(state.compensation)),
    )


def _task_row(
    state: RunState,
    execution: Execution,
    depth: int,
    now: datetime,
    secrets: tuple[str, ...],
    why: str | None = None,
) -> Row:
    mark, style = MARKS[execution.status]
    attempts = sum(unit.attempt for unit in execution.units)
    failed = sum(1 for unit in execution.units if unit.status.is_unsuccessful)
    details: list[str] = []
    if execution.with_items:
        details.append(f"{execution.done}/{len(execution.units)} items")
        if failed:
            details.append(f"{failed} failed")
    if attempts > max(len(execution.units), 1):
        details.append(f"{attempts} attempts")
    if execution.compensates is not None and execution.compensates in state.executions:
        details.append(f"undoes #{execution.compensates}")
    if execution.status is TaskStatus.WAITING and execution.inquiry_id:
        details.append(f"inquiry {execution.inquiry_id}")
    end = execution.finished_at or now
    details.append(f"{max((end - execution.started_at).total_seconds(), 0.0):.1f}s")
    if execution.error and execution.status.is_unsuccessful:
        details.append(redact(str(execution.error.get("message", "")), secrets))
    if why and not execution.status.is_terminal:
        details.append(redact(why, secrets))
    head = f"{mark} {execution.task}  {execution.status.value}"
    tail = "  ".join(d for d in details if d)
    return Row(
        depth=depth,
        key=f"{state.run_id}#{execution.id}",
        text=f"{head}  {tail}",
        markup=f"[{style}]{escape(head)}[/{style}]  [dim]{escape(tail)}[/dim]",
        signature=(execution.status, attempts, execution.done, failed, why),
    )


def _secrets(state: RunState) -> tuple[str, ...]:
    context = state.context
    return secret_values_of([context.parameters.get(name) for name in context.secrets])


# -- displays -------------------------------------------------------------------------------


class LineDisplay:
    """One line per change of a run or an execution, indented by depth (logs, pipes)."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._seen: dict[str, tuple[object, ...]] = {}

    def show(self, snapshot: RunSnapshot, now: datetime) -> None:
        for row in rows(snapshot, now):
            if self._seen.get(row.key) == row.signature:
                continue
            self._seen[row.key] = row.signature
            self._stream.write("  " * row.depth + row.text + "\n")
        self._stream.flush()

    def close(self) -> None:
        self._stream.flush()


class LiveDisplay:
    """The whole tree redrawn in place on a terminal."""

    def __init__(self, stream: TextIO) -> None:
        self._live = Live(console=Console(file=stream), refresh_per_second=4, transient=False)
        self._live.start()

    def show(self, snapshot: RunSnapshot, now: datetime) -> None:
        self._live.update(render_tree(snapshot, now))

    def close(self) -> None:
        self._live.stop()


def render_tree(snapshot: RunSnapshot, now: datetime) -> Tree:
    """The rows as a rich tree (guides show the nesting)."""
    found = list(rows(snapshot, now))
    root = Tree(found[0].markup)
    parents: list[Tree] = [root]
    for row in found[1:]:
        del parents[row.depth :]
        node = parents[-1].add(row.markup)
        parents.append(node)
    return root


Display = LineDisplay | LiveDisplay


def display_for(stream: TextIO) -> Display:
    return LiveDisplay(stream) if stream.isatty() else LineDisplay(stream)


def watch(
    loader: TreeLoader,
    run_id: str,
    display: Display,
    *,
    interval: float = 0.5,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    sleep: Callable[[float], None] = time.sleep,
) -> RunState:
    """Show ``run_id`` until it ends; returns its final state.

    Looks again after 0.1 s while the tree changes, backing off to ``interval`` while it
    does not (a live display still redraws at every look, so times move on).
    """
    first = True

    def look() -> Look[RunState]:
        nonlocal first
        snapshot, changed = loader.load(run_id)
        if changed or first or isinstance(display, LiveDisplay):
            display.show(snapshot, clock())
        first = False
        state = snapshot.state
        return Look(state, done=state.status.is_terminal, changed=changed)

    return poll(look, interval=min(0.1, interval), max_interval=interval, sleep=sleep).value


def watch_command(run_id: str, distributed: bool, interval: float) -> int:
    """The body of ``treadle runs watch``: open the database, watch, return the exit code."""
    from treadle.cli.support import ExitCode, command_database, exit_code_for, fail
    from treadle.clientlib.connection import check_schema
    from treadle.common.errors import ConfigurationError, NotFound

    with command_database(distributed) as store:
        if distributed:
            try:
                check_schema(store)
            except ConfigurationError as exc:
                fail(str(exc), ExitCode.INVALID)
        display = display_for(sys.stdout)
        try:
            final = watch(TreeLoader(store), run_id, display, interval=interval)
        except NotFound:
            fail(f"no run {run_id}")
        except KeyboardInterrupt:
            sys.stderr.write(f"stopped watching run {run_id}; it goes on\n")
            return 130
        finally:
            display.close()
    return int(exit_code_for(final.status))
