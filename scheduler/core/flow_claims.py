"""What an attempt must hold before it leaves the scheduler: its priority and its claims.

The core renders a task's ``concurrency_key`` and ``rate_limit`` (and its workflow's
``concurrency_key``) with the same context as the task's input, so a key may name a
parameter or an item; the store grants the claims or holds the dispatch back
(``docs/flow-control.md``). Pure: the values come from the spec and the run's context.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from treadle.common.errors import ExpressionError
from treadle.common.flow import DEFAULT_PRIORITY, ClaimKind, ClaimScope, FlowClaim
from treadle.common.spec import RateLimitSpec, TaskSpec
from treadle.scheduler.core.transaction import Tx


def task_priority(tx: Tx, spec: TaskSpec) -> int:
    """The task's own priority, else the run's (given at start), else its workflow's, else 5."""
    for priority in (spec.priority, tx.context.priority, tx.graph.workflow.priority):
        if priority is not None:
            return priority
    return DEFAULT_PRIORITY


def flow_claims(
    tx: Tx, spec: TaskSpec, context: Mapping[str, Any], action_rate: RateLimitSpec | None = None
) -> tuple[FlowClaim, ...]:
    """The task's claims, rendered; raises :class:`ExpressionError` naming the field.

    ``action_rate`` is the rate limit the task's action declares (pinned with the
    version): it applies when the task has none of its own."""
    claims: list[FlowClaim] = []
    workflow_key = tx.graph.workflow.concurrency_key
    if workflow_key is not None:
        key = _rendered_key(tx, workflow_key.key, context, "the workflow's concurrency_key")
        claims.append(
            FlowClaim(
                kind=ClaimKind.CONCURRENCY, key=key, limit=workflow_key.limit, scope=ClaimScope.RUN
            )
        )
    if spec.concurrency_key is not None:
        key = _rendered_key(tx, spec.concurrency_key.key, context, "concurrency_key")
        claims.append(
            FlowClaim(kind=ClaimKind.CONCURRENCY, key=key, limit=spec.concurrency_key.limit)
        )
    rate = spec.rate_limit or action_rate
    if rate is not None:
        key = (
            _rendered_key(tx, rate.key, context, "rate_limit.key")
            if rate.key is not None
            else f"action:{spec.action or spec.name}"
        )
        claims.append(
            FlowClaim(
                kind=ClaimKind.RATE,
                key=key,
                limit=rate.limit,
                period_seconds=rate.period.total_seconds(),
            )
        )
    return tuple(claims)


def _rendered_key(tx: Tx, template: str, context: Mapping[str, Any], field: str) -> str:
    try:
        value = tx.engine.render(template, context)
    except ExpressionError as exc:
        raise ExpressionError(f"{field}: {exc}") from exc
    key = "" if value is None else str(value).strip()
    if not key:
        raise ExpressionError(f"{field}: {template!r} gave an empty key")
    return key
