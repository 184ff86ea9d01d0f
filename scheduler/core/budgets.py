"""Budgets in the core: what a run may spend, checked before each attempt goes to a worker.

A run's budget (``RunState.budget``, set when it starts from the workflow's ``budget``,
the start's and the workspace's ceiling: :func:`~treadle.common.budget.effective_budget`)
counts what the run uses: the cost its actions' results report (:func:`charge`), the
attempts it sends to workers and the with_items items it starts (:func:`admit`), and the
time since it started. The checks happen in one place, :func:`admit`, just before an
action's attempt is dispatched:

* a **hard** limit reached (or a task whose ``cost_estimate_usd`` exceeds what is left:
  the limit less what was spent) stops the run: it pauses (running attempts finish,
  nothing new starts) with the stop recorded, and the attempt waits, deferred, for the
  resume. Resuming with a higher limit (:class:`~treadle.scheduler.core.events.BudgetChanged`,
  then ``ResumeRequested``) continues exactly where it stopped;
* an estimate that fits what is left but not beside the estimates of the attempts still
  running is **held**: the unit waits (the run goes on) and is looked at again after each
  event (an attempt ending, an answer);
* passing the **soft ratio** of a limit pauses the run the same way behind a run-level
  inquiry ("83% of the cost budget used (41.50 of 50.00 USD): continue?"): ``{"continue":
  true}`` resumes it, ``false`` cancels it. Each limit asks once (again after it is raised).

A step's cost ceiling (``cost_ceiling_usd``, else the budget's ``step_cost_usd``) fails
that step, not the run: an estimate above it is never dispatched, a result reporting more
fails its unit (``CostCeilingExceeded``, not retried). Compensations are never held back.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from treadle.common.budget import Budget, BudgetKind, result_cost_usd, usd
from treadle.common.graph import NodeKind
from treadle.common.spec import TaskSpec
from treadle.common.statuses import InquiryPurpose, InquiryStatus, RunStatus
from treadle.scheduler.core import finish, lifecycle
from treadle.scheduler.core.budget_state import BudgetState, BudgetStop, evolve_limits
from treadle.scheduler.core.commands import CloseInquiry, OpenInquiry
from treadle.scheduler.core.errors import error_info
from treadle.scheduler.core.events import BudgetChanged, InquiryAnswered
from treadle.scheduler.core.state import Execution, RunState, evolve
from treadle.scheduler.core.transaction import FillUnits, Tx

#: The error type of a step whose cost (estimated or reported) is above its ceiling.
COST_CEILING_EXCEEDED: Final = "CostCeilingExceeded"
#: The error type of a run whose soft budget question was answered "no".
BUDGET_DECLINED: Final = "BudgetDeclined"
#: What the run-level budget inquiry accepts.
CONTINUE_SCHEMA: Final[Mapping[str, Any]] = {
    "type": "object",
    "properties": {"continue": {"type": "boolean"}},
    "required": ["continue"],
}

_NAMES: Final = {
    BudgetKind.COST: "cost",
    BudgetKind.WALL_TIME: "wall time",
    BudgetKind.ATTEMPTS: "attempts",
    BudgetKind.ITEMS: "items",
}


def begin(tx: Tx, declared: Budget | None) -> None:
    """The run starts: it gets the budget of its workflow, its start and its workspace."""
    context = tx.context
    given = (declared or Budget()).overridden_by(context.budget)
    budget = given.capped_by(context.budget_ceiling)
    if budget.given():
        tx.budget = BudgetState.of(budget)


def budget_inquiry_id(run_id: str, stop: int) -> str:
    """The id of the run's ``stop``-th budget inquiry (deterministic, like every core id)."""
    digest = hashlib.sha256(f"{run_id}/budget/{stop}".encode()).hexdigest()
    return f"iq_{digest[:16]}"


# -- the gate --------------------------------------------------------------------------------


class Admission(StrEnum):
    """What :func:`admit` decides for an attempt about to be dispatched."""

    GO = "go"  # dispatch it (it is counted)
    HOLD = "hold"  # not now: estimates of running attempts leave too little (fill only)
    STOP = "stop"  # the budget stopped the run: defer it until the run resumes


def admit(tx: Tx, execution: Execution, position: int, *, relaunch: bool) -> Admission:
    """Whether the next attempt of unit ``position`` may go to a worker now."""
    budget = tx.budget
    if budget is None or tx.status is not RunStatus.RUNNING or execution.compensates is not None:
        return Admission.GO
    node = tx.graph.node(execution.task)
    if node.kind is not NodeKind.ACTION or ceiling_refusal(tx, node.spec) is not None:
        return Admission.GO  # only actions cost; a step over its ceiling fails at launch
    first_item = execution.with_items and execution.units[position].attempt == 0
    stop = _hard_stop(tx, budget, node.spec, first_item) or _soft_stop(tx, budget, first_item)
    if stop is None:
        stop = _short(tx, budget, node.spec, execution.id if relaunch else None)
        if stop is not None and not relaunch:
            if execution.id not in budget.held:
                tx.budget = evolve(budget, held=(*budget.held, execution.id))
            return Admission.HOLD
    if stop is not None:
        _stop(tx, budget, stop)
        return Admission.STOP
    tx.budget = evolve(
        budget,
        attempts_made=budget.attempts_made + 1,
        items_started=budget.items_started + (1 if first_item else 0),
    )
    return Admission.GO


def release_held(tx: Tx) -> None:
    """Something happened (an attempt ended, a person answered): the executions held for
    the estimates of running attempts look again."""
    budget = tx.budget
    if budget is None or not budget.held:
        return
    tx.budget = evolve(budget, held=())
    for execution_id in budget.held:
        tx.agenda.append(FillUnits(execution_id))


def _elapsed(tx: Tx) -> float:
    started = tx.started_at or tx.now
    return max((tx.now - started).total_seconds(), 0.0)


def _hard_stop(tx: Tx, budget: BudgetState, spec: TaskSpec, first_item: bool) -> BudgetStop | None:
    elapsed = _elapsed(tx)
    wall = budget.wall_time_seconds
    if wall is not None and elapsed >= wall:
        message = f"the run has lasted {elapsed:g}s; its wall_time budget is {wall:g}s"
        return BudgetStop(BudgetKind.WALL_TIME, False, message, elapsed)
    if budget.attempts is not None and budget.attempts_made >= budget.attempts:
        message = f"{budget.attempts_made} attempts made; the attempts budget is {budget.attempts}"
        return BudgetStop(BudgetKind.ATTEMPTS, False, message, budget.attempts_made + 1)
    if first_item and budget.items is not None and budget.items_started >= budget.items:
        message = f"{budget.items_started} items started; the items budget is {budget.items}"
        return BudgetStop(BudgetKind.ITEMS, False, message, budget.items_started + 1)
    limit = budget.cost_usd
    if limit is None:
        return None
    spent = budget.spent_usd
    estimate = spec.cost_estimate_usd or 0.0
    if spent >= limit:
        message = f"spent {usd(spent)} of the {usd(limit)} cost budget"
        return BudgetStop(BudgetKind.COST, False, message, round(spent + estimate, 6))
    if estimate and estimate > limit - spent:
        message = (
            f"task '{spec.name}' is estimated at {usd(estimate)}; {usd(limit - spent)} "
            f"of the {usd(limit)} cost budget is left"
        )
        return BudgetStop(BudgetKind.COST, False, message, round(spent + estimate, 6))
    return None


def _short(tx: Tx, budget: BudgetState, spec: TaskSpec, own: int | None) -> BudgetStop | None:
    """The estimate fits what is left, but not beside the estimates of running attempts."""
    limit, estimate = budget.cost_usd, spec.cost_estimate_usd
    if limit is None or not estimate:
        return None
    reserved = _reserved(tx, own)
    left = limit - budget.spent_usd - reserved
    if estimate <= left:
        return None
    message = (
        f"task '{spec.name}' is estimated at {usd(estimate)}; {usd(max(left, 0.0))} of the "
        f"{usd(limit)} cost budget is left besides {usd(reserved)} estimated for running attempts"
    )
    return BudgetStop(BudgetKind.COST, False, message, round(limit - left + estimate, 6))


def _reserved(tx: Tx, own: int | None) -> float:
    """The estimates of the attempts in flight (``own``: the execution whose relaunching
    unit is counted in flight but is the one being admitted)."""
    total = 0.0
    for execution in tx.executions.values():
        if execution.status.is_terminal or execution.compensates is not None:
            continue
        estimate = tx.graph.node(execution.task).spec.cost_estimate_usd
        if estimate:
            running = execution.in_flight - (1 if execution.id == own else 0)
            total += estimate * max(running, 0)
    return total


def _soft_stop(tx: Tx, budget: BudgetState, first_item: bool) -> BudgetStop | None:
    ratio = budget.soft_ratio
    if ratio is None:
        return None
    used: dict[BudgetKind, float] = {
        BudgetKind.COST: budget.spent_usd,
        BudgetKind.WALL_TIME: _elapsed(tx),
        BudgetKind.ATTEMPTS: float(budget.attempts_made),
    }
    if first_item:
        used[BudgetKind.ITEMS] = float(budget.items_started)
    for kind, amount in used.items():
        limit = budget.limit(kind)
        if limit is None or kind in budget.warned or amount < ratio * limit:
            continue
        share = int(amount / limit * 100) if limit else 100
        message = f"{share}% of the {_NAMES[kind]} budget used ({_show(kind, amount, limit)})"
        return BudgetStop(kind, True, message + ": continue?")
    return None


def _show(kind: BudgetKind, amount: float, limit: float) -> str:
    if kind is BudgetKind.COST:
        return f"{amount:.2f} of {usd(limit)}"
    if kind is BudgetKind.WALL_TIME:
        return f"{amount:g}s of {limit:g}s"
    return f"{amount:g} of {limit:g}"


def _stop(tx: Tx, budget: BudgetState, stop: BudgetStop) -> None:
    number = budget.stops + 1
    warned = budget.warned
    if stop.soft:
        iq = budget_inquiry_id(tx.run_id, number)
        stop = evolve(stop, inquiry_id=iq)
        warned = (*warned, stop.kind)
        tx.emit(
            OpenInquiry(
                inquiry_id=iq,
                attempt_id=f"{tx.run_id}/budget/{number}",
                task="",
                prompt=stop.message,
                schema=CONTINUE_SCHEMA,
                assigned_to=None,
                deadline=None,
                purpose=InquiryPurpose.BUDGET,
            )
        )
    tx.budget = evolve(budget, stop=stop, stops=number, warned=warned)
    lifecycle.pause(tx)


# -- results and ceilings --------------------------------------------------------------------


def ceiling_of(tx: Tx, spec: TaskSpec) -> float | None:
    """The most one step of ``spec`` may cost: its own ceiling, else the budget's."""
    if spec.cost_ceiling_usd is not None:
        return spec.cost_ceiling_usd
    return None if tx.budget is None else tx.budget.step_cost_usd


def ceiling_refusal(tx: Tx, spec: TaskSpec) -> dict[str, Any] | None:
    """The error refusing an attempt whose estimate is above the step's ceiling."""
    ceiling = ceiling_of(tx, spec)
    estimate = spec.cost_estimate_usd
    if ceiling is None or estimate is None or estimate <= ceiling:
        return None
    message = (
        f"task '{spec.name}' is estimated at {usd(estimate)}, above its cost ceiling of "
        f"{usd(ceiling)}; it was not dispatched"
    )
    return error_info(
        COST_CEILING_EXCEEDED, message, details={"estimate_usd": estimate, "ceiling_usd": ceiling}
    )


def charge(tx: Tx, execution: Execution, result: Any) -> dict[str, Any] | None:
    """An action's attempt succeeded with ``result``: count what it reports it cost. The
    error failing the unit when that is above the step's ceiling, else ``None``."""
    node = tx.graph.node(execution.task)
    if node.kind is not NodeKind.ACTION:
        return None
    cost = result_cost_usd(result)
    budget = tx.budget
    if budget is not None and cost:
        tx.budget = evolve(budget, spent_usd=round(budget.spent_usd + cost, 6))
    ceiling = ceiling_of(tx, node.spec)
    if ceiling is None or cost <= ceiling:
        return None
    message = (
        f"task '{execution.task}' reported a cost of {usd(cost)}, above its cost ceiling of "
        f"{usd(ceiling)}"
    )
    return error_info(
        COST_CEILING_EXCEEDED, message, details={"cost_usd": cost, "ceiling_usd": ceiling}
    )


# -- people and operators --------------------------------------------------------------------


def answered(tx: Tx, event: InquiryAnswered) -> bool:
    """Apply the answer to the run's budget inquiry; ``False`` if it is not that one."""
    budget = tx.budget
    stop = None if budget is None else budget.stop
    if budget is None or stop is None or stop.inquiry_id != event.inquiry_id:
        return False
    tx.emit(CloseInquiry(event.inquiry_id, InquiryStatus.ANSWERED))
    tx.budget = evolve(budget, stop=None)
    response = event.response
    go_on = response.get("continue") if isinstance(response, Mapping) else response
    if go_on is True:
        lifecycle.resume(tx)
        return True
    who = event.responder or "a person"
    message = f"{stop.message.removesuffix(': continue?')}: {who} declined to continue"
    finish.abort_run(tx, RunStatus.CANCELED, error_info(BUDGET_DECLINED, message))
    return True


def resumed(tx: Tx) -> None:
    """An operator resumes the run: a budget stop ends (its open question is withdrawn,
    as if approved; a hard limit still reached stops the run again at its next attempt)."""
    budget = tx.budget
    if budget is None or budget.stop is None or not tx.holding:
        return
    if budget.stop.inquiry_id is not None:
        tx.emit(CloseInquiry(budget.stop.inquiry_id, InquiryStatus.CANCELED))
    tx.budget = evolve(budget, stop=None)


def changed(tx: Tx, event: BudgetChanged) -> None:
    """New limits: each one the event sets replaces the run's, capped by the workspace's
    ceiling; a limit raised may ask its soft question again."""
    old = tx.budget or BudgetState()
    limits = old.limits().overridden_by(event.budget).capped_by(tx.context.budget_ceiling)
    if not limits.given() and tx.budget is None:
        return
    new = evolve_limits(old, limits)
    warned = tuple(kind for kind in old.warned if not _raised(old, new, kind))
    tx.budget = evolve(new, warned=warned)


def _raised(old: BudgetState, new: BudgetState, kind: BudgetKind) -> bool:
    before, after = old.limit(kind), new.limit(kind)
    return after is None or (before is not None and after > before)


def still_stopped(state: RunState, given: Budget | None, now: datetime) -> str | None:
    """Why resuming ``state`` with the limits ``given`` would stop it again at once (a hard
    limit it reached not raised enough), in words; ``None`` when it may go on."""
    budget = state.budget
    stop = None if budget is None else budget.stop
    if budget is None or stop is None or stop.soft:
        return None
    limits = budget.limits().overridden_by(given).capped_by(state.context.budget_ceiling)
    new = BudgetState.of(limits)
    limit = new.limit(stop.kind)
    if limit is None:
        return None
    if stop.kind is BudgetKind.WALL_TIME:
        started = state.started_at or now
        blocked = limit <= (now - started).total_seconds()
    elif stop.kind is BudgetKind.COST:
        blocked = limit <= budget.spent_usd or limit < stop.needed
    else:
        blocked = limit < stop.needed
    if not blocked:
        return None
    return (
        f"the run stopped on its {stop.kind.value} budget ({stop.message}); resume it with a "
        f"higher limit, e.g. --budget {stop.kind.value}={_suggested(stop, budget, now, state)}"
    )


def _suggested(stop: BudgetStop, budget: BudgetState, now: datetime, state: RunState) -> str:
    if stop.kind is BudgetKind.WALL_TIME:
        started = state.started_at or now
        return f"{int((now - started).total_seconds() * 2) + 60}s"
    if stop.kind is BudgetKind.COST:
        return f"{max(stop.needed, budget.spent_usd) * 2 or 1:.2f}"
    return str(int(stop.needed * 2))
