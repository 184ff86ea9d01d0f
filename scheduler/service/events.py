"""Outside events arriving: record each once, start the runs it triggers, wake the runs it awaits.

:meth:`EventRouter.send` is what ``treadle events send`` and :meth:`treadle.Client.send_event`
do, in this order:

1. An event id already recorded is a duplicate: nothing else happens.
2. Each event trigger in force (:class:`~treadle.scheduler.service.triggers.TriggerIndex`)
   that accepts the event starts one run of its definition's latest version, with
   ``trigger_event_id`` = the event id. The store allows one run per (event id,
   definition), so however often this step is repeated each trigger starts one run.
3. In one transaction: the event is recorded (if another sender recorded the same id
   meanwhile, this one is the duplicate), the ``event_waits`` whose patterns match are
   found, their runs are locked and ``EventReceived`` is applied to them; the core checks
   each wait's ``filter`` and releases what matches.

Step 2 also launches the rules the event matches (:mod:`.rule_events`): each match is
recorded, and a rule whose criteria hold starts its action. Step 2 comes before step 3 so
that a crash between them is repaired by sending the event again. Runs the event itself
started do not receive it as something they waited for, and only waits that exist when
the event is recorded can be released by it: an event sent before a wait began never
counts.

Whoever calls this carries on from the database: the embedded runner follows the runs it
touched in-process; in distributed mode the ``RunService`` writes with ``notify_outbox``
so the schedulers wake and relay what the released tasks dispatched.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from treadle.common.access import DEFAULT_WORKSPACE
from treadle.common.errors import ExpressionError, LimitExceeded, NotFound, ParameterError
from treadle.common.expr import TemplateEngine
from treadle.common.payload import json_size
from treadle.scheduler.core.events import EventReceived
from treadle.scheduler.service.event_outcome import EventOutcome
from treadle.scheduler.service.rule_events import RuleEvents
from treadle.scheduler.service.rule_launch import RuleLaunch
from treadle.scheduler.service.starting import RunOptions, RunStarter
from treadle.scheduler.service.triggers import EventTrigger, TriggerIndex
from treadle.scheduler.store import UnitOfWork

log = logging.getLogger("treadle.scheduler")


def new_event_id() -> str:
    return f"ev-{uuid.uuid4().hex[:16]}"


@dataclass(frozen=True)
class IncomingEvent:
    """A checked event: text type and subject, JSON data, an id."""

    id: str
    type: str
    subject: str | None
    data: Any

    def payload(self) -> dict[str, Any]:
        """How templates (trigger filters and parameters, wait filters) see the event."""
        return {"id": self.id, "type": self.type, "subject": self.subject, "data": self.data}


def checked_event(
    event_type: object,
    *,
    subject: object,
    data: Any,
    event_id: object,
    max_bytes: int,
) -> IncomingEvent:
    """The event as it will be stored; ParameterError naming each problem otherwise.

    The arguments are checked as they come (from JSON, an API, a CLI), whatever their type.
    """
    problems: list[str] = []
    if not isinstance(event_type, str) or not event_type.strip():
        problems.append("the event type must be non-empty text")
    if subject is not None and not isinstance(subject, str):
        problems.append("the subject must be text")
    if event_id is not None and (not isinstance(event_id, str) or not event_id.strip()):
        problems.append("the event id must be non-empty text")
    try:
        data = json.loads(json.dumps(data, allow_nan=False))
    except (TypeError, ValueError) as exc:
        problems.append(f"the event data must be JSON: {exc}")
    if problems:
        raise ParameterError(problems, subject="event")
    size = json_size(data)
    if size > max_bytes:
        raise LimitExceeded(
            f"the event data is {size} bytes of JSON, over the limit of {max_bytes} "
            "(max_payload_bytes)"
        )
    return IncomingEvent(
        str(event_id) if event_id is not None else new_event_id(),
        str(event_type),
        None if subject is None else str(subject),
        data,
    )


class EventRouter:
    """Sends events into a store: to the runs awaiting them, and to the triggers that start
    runs (see the module docstring)."""

    def __init__(
        self,
        starter: RunStarter,
        triggers: TriggerIndex | None = None,
        *,
        identity: Mapping[str, Any] | None = None,
        engine: TemplateEngine | None = None,
    ) -> None:
        self._starter = starter
        self._runs = starter.runs
        self._triggers = triggers if triggers is not None else TriggerIndex()
        self._identity = dict(identity or {})
        self._engine = engine or TemplateEngine()
        self._rules = RuleEvents(RuleLaunch(starter, clock=self._runs.clock, engine=self._engine))

    @property
    def _clock(self) -> Callable[[], datetime]:
        return self._runs.clock

    def send(
        self,
        event_type: str,
        *,
        subject: str | None = None,
        data: Any = None,
        event_id: str | None = None,
        transaction: Callable[[], AbstractContextManager[UnitOfWork]] | None = None,
        workspace: str = DEFAULT_WORKSPACE,
    ) -> EventOutcome:
        """Record the event in ``workspace``, start what it triggers there, release what
        waits for it in that workspace's runs.

        ``transaction`` opens the transaction that records the event and releases the waits
        (default: a unit of work of the store); the HTTP API passes one that records the
        send in its audit log with it.
        """
        event = checked_event(
            event_type,
            subject=subject,
            data=data,
            event_id=event_id,
            max_bytes=self._starter.limits.max_payload_bytes,
        )
        store = self._runs.store
        with store.unit_of_work() as uow:
            if uow.get_received_event(event.id, workspace=workspace) is not None:
                log.info("event %s (%s) is a duplicate: ignored", event.id, event.type)
                return EventOutcome(event.id, duplicate=True)
            triggers = [
                t
                for t in self._triggers.current(uow, workspace)
                if t.matches_type(event.type, event.subject)
            ]
        started, refused = self._start_triggered(event, triggers, workspace)
        by_rules, rules_refused = self._rules.start_matching(event.payload(), workspace)
        started = [*started, *by_rules]
        refused.update(rules_refused)
        with (transaction or store.unit_of_work)() as uow:
            recorded = uow.record_event(
                event.id,
                event.type,
                event.subject,
                event.data,
                self._clock(),
                workspace=workspace,
            )
            if not recorded:
                log.info("event %s was recorded meanwhile by another sender: ignored", event.id)
                return EventOutcome(event.id, duplicate=True)
            waits = uow.waits_for_event(event.type, event.subject, workspace=workspace)
            waiting = {wait.run_id for wait in waits}
            candidates = sorted(waiting - set(started))
            before = uow.lock_runs(candidates)
            received = EventReceived(
                event_id=event.id, type=event.type, subject=event.subject, data=event.data
            )
            self._runs.apply_in(uow, [(run_id, received) for run_id in sorted(before)])
            updated = [
                run_id for run_id in sorted(before) if uow.run_version(run_id) != before[run_id]
            ]
        log.info(
            "event %s (%s): %d run(s) started, %d run(s) updated",
            event.id,
            event.type,
            len(started),
            len(updated),
        )
        return EventOutcome(event.id, False, started, updated, refused)

    def _start_triggered(
        self, event: IncomingEvent, triggers: list[EventTrigger], workspace: str
    ) -> tuple[list[str], dict[str, str]]:
        """Start one run per accepting trigger; what could not start is reported, not raised."""
        started: list[str] = []
        refused: dict[str, str] = {}
        payload = event.payload()
        options = RunOptions(
            identity=self._identity, trigger_event_id=event.id, workspace=workspace
        )
        for trigger in triggers:
            try:
                if not trigger.accepts(payload, self._engine):
                    continue
                parameters = trigger.parameters(payload, self._engine)
                pinned = self._runs.definitions.pinned(
                    trigger.workflow, trigger.version, workspace=trigger.owner
                )
                run_id = self._starter.start_pinned(pinned, parameters, options)
            except ExpressionError as exc:
                refused[trigger.workflow] = f"its trigger cannot be evaluated: {exc}"
            except (ParameterError, NotFound) as exc:
                refused[trigger.workflow] = str(exc)
            else:
                started.append(run_id)
                log.info(
                    "event %s started run %s of %s v%d",
                    event.id,
                    run_id,
                    trigger.workflow,
                    trigger.version,
                )
                continue
            log.warning(
                "event %s does not start %s: %s",
                event.id,
                trigger.workflow,
                refused[trigger.workflow],
            )
        return started, refused
