"""Retry from a failed task: run one task of an ended run again, and go on from it.

The plain retry (:func:`~treadle.scheduler.core.lifecycle.retry`) reopens every unhandled
failure and every cancelled execution of the run. A retry that names a task
(``RetryRequested.task``; Argo's users asked for it as "retry from a node") reopens only
that task's latest execution, exactly as the plain retry reopens one
(:func:`~treadle.scheduler.core.lifecycle.reopen`: its items that did not succeed, or its
attempt), and the flow goes on from it:

* it applies to a run that ended failed, timed out or canceled, and to a task whose latest
  execution ended failed, timed out or canceled (:func:`retry_target`); anything else
  changes nothing (the service refuses it first, saying why);
* a task nested in parallel blocks reopens the blocks around it too (not their other
  nested tasks), so that its scope goes on; a parallel block named itself is reopened
  with what did not succeed inside it, as the plain retry reopens a block;
* only the failures recorded for the reopened executions are cleared. The other unhandled
  failures of the scopes it goes on in, and the executions there that were cancelled, are
  *held* (``RunState.held_failures``): they do not stop the flow from the retried task,
  and a ``join: all`` still waits for them, but once their scope has nothing more to do
  they count again (:mod:`~treadle.scheduler.core.scopes`,
  :mod:`~treadle.scheduler.core.completion`): the run ends failed (timed out when all
  that is left timed out, canceled when only cancelled executions are left), and a later
  retry, naming a task or not, takes them up.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from treadle.common.graph import NodeKind
from treadle.common.statuses import RunStatus, TaskStatus
from treadle.scheduler.core.lifecycle import reopen
from treadle.scheduler.core.state import ROOT_SCOPE, Execution, Failure
from treadle.scheduler.core.transaction import Tx

__all__ = ["RETRYABLE_RUNS", "RETRYABLE_TASKS", "enclosing", "retry_target", "retry_task"]

#: The statuses of a run a retry applies to.
RETRYABLE_RUNS = frozenset({RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.CANCELED})
#: The statuses of a task's latest execution (and the blocks around it) a retry reopens.
RETRYABLE_TASKS = frozenset({TaskStatus.FAILED, TaskStatus.TIMED_OUT, TaskStatus.CANCELED})


class RetryView(Protocol):
    """What :func:`retry_target` reads of a run: a frozen ``RunState`` or the core's ``Tx``."""

    @property
    def executions(self) -> Mapping[int, Execution]: ...

    @property
    def latest(self) -> Mapping[str, int]: ...


def enclosing(run: RetryView, execution: Execution) -> list[Execution]:
    """The parallel block executions around ``execution``, innermost first."""
    blocks: list[Execution] = []
    scope = execution.scope
    while scope != ROOT_SCOPE:
        block = run.executions[scope]
        blocks.append(block)
        scope = block.scope
    return blocks


def retry_target(run: RetryView, task: str) -> Execution | None:
    """The execution a retry naming ``task`` reopens: the task's latest, when it ended
    failed, timed out or canceled, is not a compensation, and every parallel block around
    it ended badly too (a nested failure handled inside a block that then succeeded cannot
    be retried alone). ``None`` otherwise, and for a task that never ran."""
    execution_id = run.latest.get(task)
    if execution_id is None:
        return None
    execution = run.executions[execution_id]
    if execution.compensates is not None:
        return None
    if any(each.status not in RETRYABLE_TASKS for each in (execution, *enclosing(run, execution))):
        return None
    return execution


def retry_task(tx: Tx, task: str) -> None:
    """Reopen ``task``'s latest execution (see the module docstring); else change nothing."""
    if tx.status not in RETRYABLE_RUNS:
        return
    target = retry_target(tx, task)
    if target is None:
        return
    blocks = enclosing(tx, target)
    inside = _inside(tx, target) if tx.graph.node(task).kind is NodeKind.PARALLEL else []
    reopened = {target.id, *(block.id for block in blocks), *inside}
    for scope in sorted({target.scope, *(block.scope for block in blocks)}):
        _hold_the_rest(tx, scope, reopened)
    tx.finished_at = None
    tx.error = None
    tx.output = None
    tx.move_run(RunStatus.RUNNING)
    for execution_id in sorted(reopened):  # a block before what it holds
        reopen(tx, tx.execution(execution_id))
    tx.scopes_to_check.add(ROOT_SCOPE)


def _inside(tx: Tx, block: Execution) -> list[int]:
    """What did not succeed inside ``block`` (at any depth): its unhandled failures and its
    cancelled executions, whose failures are cleared, as the plain retry reopens them."""
    scopes = {block.id}
    for execution in sorted(tx.executions.values(), key=lambda e: e.id):  # blocks nest upwards
        if execution.scope in scopes and tx.graph.node(execution.task).kind is NodeKind.PARALLEL:
            scopes.add(execution.id)
    unhandled = {f.execution for scope in scopes for f in tx.failures.get(scope, ())}
    for scope in scopes:
        tx.clear_failures(scope)
    return [
        e.id
        for e in tx.executions.values()
        if e.scope in scopes
        and e.compensates is None
        and (e.id in unhandled or e.status is TaskStatus.CANCELED)
    ]


def _hold_the_rest(tx: Tx, scope: int, reopened: set[int]) -> None:
    """Clear ``scope``'s failures of what is reopened and hold the others, with the
    executions there that were cancelled, until the scope has nothing more to do."""
    failures = tx.failures.get(scope, ())
    recorded = {f.execution for f in failures}
    kept = tuple(f for f in failures if f.execution not in reopened)
    canceled = tuple(
        Failure(e.task, e.id, e.status, e.error)
        for e in sorted(tx.executions.values(), key=lambda e: e.id)
        if e.scope == scope
        and e.status is TaskStatus.CANCELED
        and e.compensates is None
        and e.id not in reopened
        and e.id not in recorded
    )
    tx.clear_failures(scope)
    tx.hold_failures(scope, kept + canceled)
