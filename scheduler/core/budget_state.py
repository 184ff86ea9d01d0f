"""What a run with a budget carries in its state: its limits, what it spent, why it stopped.

Kept in the run's ``core`` column (:class:`~treadle.scheduler.core.state.RunState`
``budget``, ``None`` for a run without a budget), as plain frozen dataclasses of scalars so
the store's codec writes them without being told how. The rules that change them are in
:mod:`treadle.scheduler.core.budgets`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

from treadle.common.budget import Budget, BudgetKind


@dataclass(frozen=True, slots=True)
class BudgetStop:
    """Why a budget stopped the run (it is paused until it resumes).

    ``soft``: the run passed its ``soft_ratio`` of a limit and asks a person, through the
    run-level inquiry ``inquiry_id``, whether to go on. Otherwise a hard limit was reached:
    nothing more is dispatched until the run is resumed with a limit of at least
    ``needed`` (for ``wall_time``, in seconds: longer than the run has lasted by then).
    """

    kind: BudgetKind
    soft: bool
    message: str
    needed: float = 0.0
    inquiry_id: str | None = None


@dataclass(frozen=True, slots=True)
class BudgetState:
    """A run's limits (``None``: no limit), what it has used, and its stop, if stopped.

    ``warned`` lists the limits whose soft ratio a person was already asked about (raising
    a limit asks again at the new one); ``stops`` counts the stops so far (each soft stop's
    inquiry gets an id of its own); ``held`` names the executions whose next unit waits for
    running attempts' estimates to be settled.
    """

    cost_usd: float | None = None
    wall_time_seconds: float | None = None
    attempts: int | None = None
    items: int | None = None
    soft_ratio: float | None = None
    step_cost_usd: float | None = None
    spent_usd: float = 0.0
    attempts_made: int = 0
    items_started: int = 0
    warned: tuple[BudgetKind, ...] = ()
    stop: BudgetStop | None = None
    stops: int = 0
    held: tuple[int, ...] = ()

    @classmethod
    def of(cls, budget: Budget) -> BudgetState:
        """A fresh state holding ``budget``'s limits."""
        return evolve_limits(cls(), budget)

    def limits(self) -> Budget:
        """The limits as a :class:`Budget`."""
        wall = self.wall_time_seconds
        return Budget(
            cost_usd=self.cost_usd,
            wall_time=None if wall is None else timedelta(seconds=wall),
            attempts=self.attempts,
            items=self.items,
            soft_ratio=self.soft_ratio,
            step_cost_usd=self.step_cost_usd,
        )

    def limit(self, kind: BudgetKind) -> float | None:
        """The limit of ``kind`` as a number (``wall_time`` in seconds)."""
        if kind is BudgetKind.COST:
            return self.cost_usd
        if kind is BudgetKind.WALL_TIME:
            return self.wall_time_seconds
        if kind is BudgetKind.ATTEMPTS:
            return None if self.attempts is None else float(self.attempts)
        return None if self.items is None else float(self.items)


def evolve_limits(state: BudgetState, budget: Budget) -> BudgetState:
    """``state`` holding ``budget``'s limits instead of its own (what it used stays)."""
    wall = budget.wall_time
    return replace(
        state,
        cost_usd=budget.cost_usd,
        wall_time_seconds=None if wall is None else wall.total_seconds(),
        attempts=budget.attempts,
        items=budget.items,
        soft_ratio=budget.soft_ratio,
        step_cost_usd=budget.step_cost_usd,
    )
