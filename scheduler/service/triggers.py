"""Event triggers: which published definitions start a run when an event arrives, and with what.

A definition declares ``trigger: {type: event, event_type, subject, filter, parameters}``.
Only the *latest* published version of a definition counts (publishing a version without
the trigger switches it off). :class:`TriggerIndex` keeps the triggers of those versions
per process: each lookup asks the database for the newest version number of every
definition (one short query) and re-reads only definitions whose number moved, so a
version published by any process is seen at the next event, without a restart.

Triggers keep to workspaces: an event sent in a workspace reaches the triggers of that
workspace's own definitions and of the shared ones (its own winning when both have a
ref), and the runs it starts belong to that workspace.

A matching event starts a run whose parameters are the event's ``data`` (only the keys the
workflow declares as parameters; ``data`` that is not a mapping gives none) overlaid with
``trigger.parameters`` rendered with ``event`` (``{id, type, subject, data}``) in scope.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from treadle.common.access import DEFAULT_WORKSPACE, SHARED_WORKSPACE
from treadle.common.expr import TemplateEngine
from treadle.common.patterns import event_matches
from treadle.common.spec import TriggerSpec
from treadle.scheduler.service.definitions import SPEC_DOCUMENT
from treadle.scheduler.store import UnitOfWork


@dataclass(frozen=True)
class EventTrigger:
    """The event trigger of one published definition version (``owner``: the workspace
    that owns the definition, ``''`` when shared)."""

    workflow: str
    version: int
    spec: TriggerSpec
    parameter_names: frozenset[str]
    owner: str = SHARED_WORKSPACE

    def matches_type(self, event_type: str, subject: str | None) -> bool:
        """Whether the event's type and subject fit the trigger's patterns (filter aside)."""
        if self.spec.event_type is None:
            return False  # not an event trigger: it takes no event at all
        return event_matches(
            event_type,
            subject,
            type_pattern=self.spec.event_type,
            subject_pattern=self.spec.subject,
        )

    def accepts(self, event: Mapping[str, Any], engine: TemplateEngine) -> bool:
        """Type, subject and ``filter`` (raises ExpressionError when the filter cannot run)."""
        if not self.matches_type(str(event["type"]), event.get("subject")):
            return False
        return engine.truthy(self.spec.filter, {"event": dict(event)})

    def parameters(self, event: Mapping[str, Any], engine: TemplateEngine) -> dict[str, Any]:
        """The run's parameters for ``event`` (raises ExpressionError from a template)."""
        data = event.get("data")
        given: dict[str, Any] = {}
        if isinstance(data, Mapping):
            given = {str(k): v for k, v in data.items() if k in self.parameter_names}
        rendered = engine.render(dict(self.spec.parameters), {"event": dict(event)})
        given.update(rendered)
        return given


class TriggerIndex:
    """The event triggers of the latest published versions, cached per (definition, version).

    Safe to share between threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._known: dict[tuple[str, str], tuple[int, EventTrigger | None]] = {}

    def current(self, uow: UnitOfWork, workspace: str = DEFAULT_WORKSPACE) -> list[EventTrigger]:
        """Every event trigger in force now for events of ``workspace``, by workflow ref."""
        latest = uow.latest_definition_versions()
        with self._lock:
            for key in set(self._known) - set(latest):
                del self._known[key]
            for key, version in latest.items():
                known = self._known.get(key)
                if known is None or known[0] != version:
                    self._known[key] = (version, _read_trigger(uow, *key, version))
            visible = {
                ref: entry
                for (owner, ref), (_, entry) in sorted(self._known.items())
                if owner in (SHARED_WORKSPACE, workspace)  # '' sorts first: own ones win
            }
        found = [entry for entry in visible.values() if entry is not None]
        return sorted(found, key=lambda t: t.workflow)

    def invalidate(self) -> None:
        """Forget everything (the next lookup re-reads every definition)."""
        with self._lock:
            self._known.clear()


def _read_trigger(uow: UnitOfWork, owner: str, ref: str, version: int) -> EventTrigger | None:
    """The event trigger of a stored version, read from its spec document (no compiling)."""
    stored = uow.get_definition(ref, version, workspace=owner)
    raw = json.loads(stored.documents.get(SPEC_DOCUMENT, "{}"))
    listed = raw.get("triggers") or ()
    given = [raw.get("trigger"), *(listed if isinstance(listed, list) else ())]
    events = [t for t in given if isinstance(t, Mapping) and t.get("type") == "event"]
    if not events:
        return None  # schedules are treadle beat's (scheduler/service/schedule_sync.py)
    trigger = events[0]
    spec = TriggerSpec.model_validate(trigger)
    names = frozenset(str(p["name"]) for p in raw.get("parameters") or () if isinstance(p, Mapping))
    return EventTrigger(ref, version, spec, names, owner)
