"""``treadle_sandbox_checks_total`` and ``treadle_sandbox_refusals_total{reason}``.

The sandbox checks a run twice over: when it starts (:class:`SandboxGate` tells
:meth:`SandboxCounts.start_checked`, refused or not) and at each dispatch of a run with a
policy (the core refuses an attempt by failing its unit with a ``SandboxViolation`` error,
which :meth:`SandboxCounts.count` finds in the saved changes). A refusal counts once per
distinct reason of its report. :class:`~treadle.scheduler.service.run_metrics.RunMetrics`
holds one and counts through it, once the transaction commits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from treadle.common.metrics import Metrics
from treadle.common.sandbox_report import SandboxReport
from treadle.scheduler.core.commands import DispatchTask
from treadle.scheduler.core.dispatching import SANDBOX_VIOLATION
from treadle.scheduler.core.state import Execution, Unit
from treadle.scheduler.store import RunChange

Count = tuple[Callable[[float], None], float]


class SandboxCounts:
    """The sandbox's two counters, fed by start checks and by saved changes."""

    def __init__(self, metrics: Metrics) -> None:
        self._checks = metrics.counter("treadle_sandbox_checks")
        self._refusals = metrics.counter("treadle_sandbox_refusals")

    def start_checked(self, report: SandboxReport) -> None:
        """A start was checked (counted now: a refused start has no transaction)."""
        self._checks.inc()
        for reason in report.reasons:
            self._refusals.labels(reason.value).inc()

    def count(self, change: RunChange, counts: list[Count]) -> None:
        """The dispatches a run with a policy made in ``change``, and the attempts its
        policy refused."""
        new = change.new
        if new.context.sandbox is None:
            return
        for command in change.commands:
            if isinstance(command, DispatchTask):
                counts.append((self._checks.inc, 1.0))
        before = change.old.executions if change.old is not None else {}
        for execution_id, execution in new.executions.items():
            old = before.get(execution_id)
            if old is execution:
                continue
            for unit in _changed_units(old, execution):
                reasons = _refusal_reasons(unit.error)
                if reasons:
                    counts.append((self._checks.inc, 1.0))
                    counts.extend((self._refusals.labels(r).inc, 1.0) for r in reasons)


def _changed_units(old: Execution | None, new: Execution) -> Iterator[Unit]:
    """The units of ``new`` that are not the same objects in ``old`` (chunk by chunk, so a
    big with_items execution costs one chunk per change)."""
    old_chunks = old.units.chunks if old is not None else ()
    for index, chunk in enumerate(new.units.chunks):
        was = old_chunks[index] if index < len(old_chunks) else ()
        if was is chunk:
            continue
        for position, unit in enumerate(chunk):
            if position >= len(was) or was[position] is not unit:
                yield unit


def _refusal_reasons(error: Mapping[str, Any] | None) -> Sequence[str]:
    """The reasons of a sandbox refusal's report, once each (none for other errors)."""
    if not error or error.get("type") != SANDBOX_VIOLATION:
        return ()
    report = (error.get("details") or {}).get("sandbox") or {}
    reasons = [v.get("reason") for v in report.get("violations", ()) if isinstance(v, Mapping)]
    return tuple(dict.fromkeys(str(r) for r in reasons if r))
