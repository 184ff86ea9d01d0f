"""Applying a person's decision on an escalated task (:mod:`treadle.scheduler.core.escalation`).

* ``retry``: the task runs again as an operator's retry would run it: a new attempt at
  once, with its whole retry policy again;
* ``skip``: the task ends ``skipped``, with ``output`` (if given) as its result, as an
  operator's skip ends it: its transitions decide what follows;
* ``fail`` (and no answer before the question's ``timeout``): the task fails as it would
  have, with its last attempt's error.

The decision, and who made it, stay in the error's or result's ``details.escalation`` and
in the run's event log (``InquiryAnswered.responder``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from treadle.common.statuses import TASK_TRANSITIONS, InquiryStatus, TaskStatus, moved
from treadle.scheduler.core import finish
from treadle.scheduler.core.commands import CloseInquiry, EmitLifecycleEvent
from treadle.scheduler.core.escalation import Decision
from treadle.scheduler.core.events import InquiryAnswered
from treadle.scheduler.core.state import Execution, evolve
from treadle.scheduler.core.transaction import Relaunch, Tx


def answered(tx: Tx, execution: Execution, position: int, event: InquiryAnswered) -> None:
    """Apply the answer to the escalation inquiry of unit ``position``."""
    unit = execution.units[position]
    tx.emit(CloseInquiry(event.inquiry_id, InquiryStatus.ANSWERED))
    tx.cancel_timer(unit.timer)
    response = event.response if isinstance(event.response, Mapping) else {}
    try:
        decision = Decision(str(response.get("decision")))
    except ValueError:
        decision = Decision.FAIL
    record = {"decision": decision.value, "by": event.responder}
    if decision is Decision.RETRY:
        _retry(tx, execution, position)
    elif decision is Decision.SKIP:
        finish.unit_skipped(tx, execution.id, position, result=response.get("output"))
    else:
        _fail(tx, execution, position, record)


def timed_out(tx: Tx, execution: Execution, position: int) -> None:
    """Nobody answered the escalation in time: the task fails as it would have."""
    unit = execution.units[position]
    if unit.inquiry_id is not None:
        tx.emit(CloseInquiry(unit.inquiry_id, InquiryStatus.TIMED_OUT))
    _fail(tx, execution, position, {"decision": Decision.FAIL.value, "timed_out": True})


def _retry(tx: Tx, execution: Execution, position: int) -> None:
    unit = execution.units[position]
    running = evolve(
        unit,
        status=moved(TASK_TRANSITIONS, unit.status, TaskStatus.RUNNING),
        inquiry_id=None,
        timer=None,
        retry_base=unit.attempt,
    )
    execution = tx.put_unit(execution, position, running)
    if execution.status is TaskStatus.WAITING:
        status = moved(TASK_TRANSITIONS, execution.status, TaskStatus.RUNNING)
        tx.put(evolve(execution, status=status))
        tx.emit(EmitLifecycleEvent(execution.task, execution.id, TaskStatus.RUNNING, tx.now))
    tx.agenda.append(Relaunch(execution.id, position))  # deferred while the run is paused


def _fail(tx: Tx, execution: Execution, position: int, record: Mapping[str, Any]) -> None:
    unit = execution.units[position]
    error = dict(unit.error or {})
    details = dict(error.get("details") or {})
    escalation = {**dict(details.get("escalation") or {}), **record}
    status = TaskStatus(escalation.pop("status", TaskStatus.FAILED.value))
    details["escalation"] = escalation
    error["details"] = details
    tx.put_unit(execution, position, evolve(unit, timer=None))
    finish.unit_failed(tx, execution.id, position, status, error, retry=False)
