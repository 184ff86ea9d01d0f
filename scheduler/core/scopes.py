"""Settling scopes: releasing joins, then ending a scope (a parallel block or the run) once idle.

The rules implemented here are the ones ``docs/language.md`` states:

* ``join: all`` waits for inbound transitions that can still fire; a count join waits for
  that many firings;
* a scope with nothing left to run ends: a parallel block with its nested tasks' results
  (failed if any failed unhandled), the top level by completing the run;
* after a retry from one task, the failures it held aside count as arrivals still to come
  for ``join: all`` (they may be retried later), and count again once the scope is idle.

Split from :mod:`treadle.scheduler.core.finish`, which ends units and executions and marks
the scopes to check; ``decide`` settles them here after the agenda has run.
"""

from __future__ import annotations

from treadle.common.statuses import RunStatus, TaskStatus
from treadle.scheduler.core.completion import complete_run, failure_summary
from treadle.scheduler.core.finish import end_execution
from treadle.scheduler.core.state import ROOT_SCOPE, DeferredKind
from treadle.scheduler.core.transaction import StartTask, Tx


def settle_scope(tx: Tx, scope: int) -> None:
    """Release joins that can no longer gain inbound transitions, then end an idle scope."""
    if scope != ROOT_SCOPE and tx.execution(scope).status.is_terminal:
        return
    if scope == ROOT_SCOPE and (tx.status.is_terminal or tx.status is RunStatus.COMPENSATING):
        return
    if any(d.kind is DeferredKind.START and d.scope == scope for d in tx.deferred):
        return  # paused with work still to start here: the scope is not idle
    if _release_joins(tx, scope):
        return
    if tx.active.get(scope, 0) == 0 and not tx.agenda:
        _complete_scope(tx, scope)


def _release_joins(tx: Tx, scope: int) -> bool:
    prefix = f"{scope}:"
    pending = sorted((k, v) for k, v in tx.joins.items() if k.startswith(prefix))
    if not pending:
        return False
    graph = tx.graph
    live = {e.task for e in tx.executions.values() if e.scope == scope and e.is_active}
    held = {f.task for f in tx.held_in(scope)}  # may be retried later: they may still arrive
    live |= held
    waiting = {key[len(prefix) :] for key, _ in pending}
    released = False
    for key, fired in pending:
        task = key[len(prefix) :]
        node = graph.node(task)
        join = node.spec.join
        if join == "all":
            fired_edges = set(fired)
            unfired = {graph.edges[i].source for i in node.in_edges if i not in fired_edges}
            ready = not unfired or not (
                unfired & graph.reachable_from(live | (waiting - {task}), avoid=task)
            )
        else:
            ready = isinstance(join, int) and len(fired) >= join
        if ready:
            tx.drop_join(key)
            tx.agenda.append(StartTask(task, scope))
            released = True
    if released or tx.active.get(scope, 0) or tx.agenda or held:
        return released  # with failures held the scope fails, its joins kept for a retry
    # Nothing in the scope can run any more: 'all' joins go with what they have, count
    # joins that can no longer reach their count are dropped.
    for key, _ in pending:
        task = key[len(prefix) :]
        tx.drop_join(key)
        if graph.node(task).spec.join == "all":
            tx.agenda.append(StartTask(task, scope))
            released = True
    return released


def _complete_scope(tx: Tx, scope: int) -> None:
    if scope == ROOT_SCOPE:
        complete_run(tx)
        return
    tx.restore_failures(scope)
    parallel = tx.execution(scope)
    node = tx.graph.node(parallel.task)
    result = {}
    for child in node.children:
        latest = tx.latest.get(child)
        if latest is not None and tx.executions[latest].scope == scope:
            result[child] = tx.executions[latest].result
    failures = tx.failures.get(scope, ())
    if not failures:
        end_execution(tx, scope, TaskStatus.SUCCEEDED, result=result)
        return
    status, error = failure_summary(failures, "NestedTaskFailed")
    end_execution(tx, scope, status, result=result, error=error)
