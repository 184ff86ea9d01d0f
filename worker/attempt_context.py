"""Which attempt a Python action is running for, as the action itself may ask.

An action is called with its parameters only; what identifies its attempt (the run, the
task, the attempt number and, for an action that declares ``side_effects: true``, the
idempotency key) is available while it runs::

    from treadle.worker.attempt_context import current_attempt

    def charge(amount: int) -> dict:
        attempt = current_attempt()
        key = attempt.idempotency_key if attempt else None
        ...

The key is the same for every attempt of one task execution (and item): retries, a
redelivered message, a manual retry of the run. Hand it to the service the action writes
to, so the effect is made once (docs/packs.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass

from treadle.common.messages import TaskDispatch

__all__ = ["AttemptContext", "current_attempt", "running"]


@dataclass(frozen=True)
class AttemptContext:
    """The attempt an action runs for."""

    run_id: str
    task: str
    attempt_id: str
    attempt: int
    item_index: int | None
    #: Set for an action that declares ``side_effects: true``, else ``None``.
    idempotency_key: str | None

    @classmethod
    def of(cls, dispatch: TaskDispatch) -> AttemptContext:
        return cls(
            run_id=dispatch.run_id,
            task=dispatch.task,
            attempt_id=dispatch.attempt_id,
            attempt=dispatch.attempt,
            item_index=dispatch.item_index,
            idempotency_key=dispatch.idempotency_key,
        )


_CURRENT: ContextVar[AttemptContext | None] = ContextVar("treadle_attempt", default=None)


def current_attempt() -> AttemptContext | None:
    """The attempt the calling action runs for (``None`` outside an action)."""
    return _CURRENT.get()


@contextmanager
def running(dispatch: TaskDispatch) -> Iterator[AttemptContext]:
    """Within the block, :func:`current_attempt` is ``dispatch``'s attempt."""
    context = AttemptContext.of(dispatch)
    token = _CURRENT.set(context)
    try:
        yield context
    finally:
        _CURRENT.reset(token)
