"""What goes to a worker for one attempt of an action, and what may stop it going.

:func:`sandbox_refusal` checks the rendered input against the run's sandbox policy (fixed
when the run started, ``RunContext.sandbox``): a violation fails the attempt for good, as
a template that cannot render does, with the sandbox's report as the error's details.
:func:`task_dispatch` builds the message, with the unit's idempotency key when the action
declares side effects.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from treadle.common.graph import Node
from treadle.common.messages import TaskDispatch
from treadle.common.sandbox_check import check_dispatch
from treadle.scheduler.core.errors import error_info
from treadle.scheduler.core.ids import attempt_id, idempotency_key
from treadle.scheduler.core.state import Execution
from treadle.scheduler.core.transaction import Tx

#: The error type of an attempt the sandbox refused (``task.<name>.error.type``).
SANDBOX_VIOLATION = "SandboxViolation"


def sandbox_refusal(tx: Tx, node: Node, rendered: Mapping[str, Any]) -> dict[str, Any] | None:
    """The error failing this attempt when its rendered input breaks the run's policy."""
    policy = tx.context.sandbox
    if policy is None:
        return None
    report = check_dispatch(node, rendered, policy)
    if report.valid:
        return None
    first = report.violations[0].message
    more = len(report.violations) - 1
    message = f"refused by the sandbox policy: {first}" + (f" (and {more} more)" if more else "")
    return error_info(SANDBOX_VIOLATION, message, details={"sandbox": report.as_dict()})


def task_dispatch(
    tx: Tx,
    execution: Execution,
    position: int,
    attempt: int,
    parameters: dict[str, Any],
) -> TaskDispatch:
    """The message running ``attempt`` of unit ``position`` of ``execution`` on a worker."""
    node = tx.graph.node(execution.task)
    spec = node.spec
    key = None
    if node.side_effects:
        key = idempotency_key(tx.run_id, execution.task, execution.id, position)
    return TaskDispatch(
        attempt_id=attempt_id(tx.run_id, execution.id, position, attempt),
        run_id=tx.run_id,
        task=execution.task,
        execution=execution.id,
        item_index=execution.units[position].index,
        attempt=attempt,
        action_ref=spec.action or "",
        input=parameters,
        timeout_seconds=spec.timeout.total_seconds() if spec.timeout else None,
        runner=node.runner,
        queue=node.queue,
        idempotency_key=key,
    )
