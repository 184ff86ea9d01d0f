"""Flow control's shared words: priorities, and the claims an attempt holds before it runs.

A task's attempt may need a slot of a concurrency key (``concurrency_key`` on the task or
its workflow) or room under a rate limit (``rate_limit`` on the task or its action) before
it leaves the scheduler. The core renders each claim when it dispatches the attempt; the
scheduler's store grants it or holds the dispatch back until it can
(``docs/flow-control.md``). Priorities run 0-9, 9 first, on both brokers.
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from treadle.common.errors import ParameterError

#: Priorities run from 0 (last) to 9 (first); work without one has 5.
MIN_PRIORITY = 0
MAX_PRIORITY = 9
DEFAULT_PRIORITY = 5


def checked_priority(priority: int | None) -> int | None:
    """``priority`` if it is one (0-9) or ``None``; a ParameterError naming it otherwise."""
    if priority is None:
        return None
    if (
        isinstance(priority, bool)
        or not isinstance(priority, int)
        or not (MIN_PRIORITY <= priority <= MAX_PRIORITY)
    ):
        raise ParameterError(
            [
                f"priority must be an integer from {MIN_PRIORITY} (last) to {MAX_PRIORITY} "
                f"(first), not {priority!r}"
            ],
            subject="priority",
        )
    return priority


class ClaimKind(StrEnum):
    """What a claim asks for: a slot held while the holder lives, or a grant in a window."""

    CONCURRENCY = "concurrency"
    RATE = "rate"


class ClaimScope(StrEnum):
    """Who holds a concurrency slot: the attempt (until it ends) or its run (until it ends)."""

    TASK = "task"
    RUN = "run"


class FlowClaim(BaseModel):
    """One slot or grant an attempt needs: ``limit`` holders of ``key`` at once (concurrency)
    or ``limit`` grants of ``key`` per ``period_seconds`` (rate)."""

    model_config = ConfigDict(frozen=True)

    kind: ClaimKind
    key: str = Field(min_length=1)
    limit: int = Field(ge=1)
    scope: ClaimScope = ClaimScope.TASK
    period_seconds: float | None = Field(default=None, gt=0)

    def describe(self) -> str:
        """How a person reads it: ``concurrency key 'customer-7' (limit 2)``."""
        if self.kind is ClaimKind.RATE:
            return f"rate limit '{self.key}' ({self.limit} per {self.period_seconds:g} s)"
        holder = "runs" if self.scope is ClaimScope.RUN else "tasks"
        return f"concurrency key '{self.key}' (limit {self.limit} {holder})"
