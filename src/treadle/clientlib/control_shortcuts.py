"""The lifecycle controls of :class:`treadle.Client` by name: ``pause``, ``resume``,
``retry``, ``compensate`` and ``cancel``, each one :meth:`control` call.

Kept apart so the client module stays one responsibility per part; the client provides
``control`` (check and apply in one transaction, audited) and ``get``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from treadle.clientlib.views import RunInfo
from treadle.common.budget import Budget, checked_budget
from treadle.scheduler.service.control_rules import Control, ControlRefused

__all__ = ["ControlShortcuts", "budget_of"]

#: A budget as callers give it: a mapping of limits (``{"cost_usd": 50}``) or a Budget.
BudgetLike = Budget | Mapping[str, Any] | None


def budget_of(given: BudgetLike) -> Budget | None:
    """``given`` as a checked Budget (a ParameterError naming each bad limit)."""
    return None if given is None else checked_budget(given, subject="budget")


class ControlShortcuts:
    """``pause``, ``resume``, ``retry``, ``compensate``, ``cancel`` on top of ``control``."""

    def control(
        self,
        run_id: str,
        control: Control | str,
        reason: str | None = None,
        budget: BudgetLike = None,
        *,
        task: str | None = None,
    ) -> RunInfo:
        raise NotImplementedError

    def get(self, run_id: str, *, items: bool = False) -> RunInfo:
        raise NotImplementedError

    def pause(self, run_id: str, reason: str | None = None) -> RunInfo:
        """Start nothing new; the run is ``paused`` once its running tasks have finished.

        Its child runs are paused too. Only a running run can be paused.
        """
        return self.control(run_id, Control.PAUSE, reason)

    def resume(self, run_id: str, reason: str | None = None, budget: BudgetLike = None) -> RunInfo:
        """Continue a paused (or pausing) run exactly where it stopped, child runs included.

        ``budget`` sets new limits of the run's budget first (``{"cost_usd": 50}``): a run
        its budget stopped is refused (ControlRefused, nothing changed) until the limit it
        reached is raised enough (``docs/governance.md``).
        """
        return self.control(run_id, Control.RESUME, reason, budget)

    def retry(self, run_id: str, reason: str | None = None, *, task: str | None = None) -> RunInfo:
        """Re-run what failed, timed out or was cancelled in an ended run.

        Succeeded tasks (and succeeded items of with_items tasks) and the variables they
        published are kept. Only failed, timed out or canceled runs can be retried.

        ``task`` retries from that task: only its latest execution runs again (its items
        that did not succeed, or its attempt) and the flow goes on from it; the run's
        other failures stay recorded, so it ends failed again while they are unhandled
        (``docs/lifecycle.md``). NotFound (naming it) for a task the run's definition does
        not have; ControlRefused when its latest execution did not fail, time out or get
        canceled.
        """
        return self.control(run_id, Control.RETRY, reason, task=task)

    def compensate(self, run_id: str, reason: str | None = None) -> RunInfo:
        """Undo the run's completed work with the tasks' ``compensate`` actions, newest first.

        A run still going is cancelled first (``reason`` is its cancel reason). The run
        ends ``compensated``, or ``failed`` naming the compensation that failed.
        """
        return self.control(run_id, Control.COMPENSATE, reason)

    def cancel(self, run_id: str, reason: str | None = None) -> RunInfo:
        """Cancel the run (and its child runs); a run that already ended is left as it is.

        Returns the run afterwards. Attempts in flight are revoked; whatever they report
        later is recorded and ignored.
        """
        try:
            return self.control(run_id, Control.CANCEL, reason)
        except ControlRefused:
            return self.get(run_id)
