"""Writing the lifecycle events of a newly published definition version.

:class:`~treadle.scheduler.service.definitions.Definitions` calls :func:`record_new_version`
in the transaction that stored a new version (``TREADLE_LIFECYCLE_EVENTS`` on): its first
version is ``workflows.changes.definition.create`` (data: the v1 ``WorkflowDefinition``)
followed by ``workflows.changes.version.publish``; every later one is
``version.publish`` alone (data: the v1 ``WorkflowVersion``). Publishing unchanged content
makes no version and so no event. A definition's events belong to no run: they are never
purged with runs.
"""

from __future__ import annotations

from treadle.scheduler.service.definitions import PinnedDefinition
from treadle.scheduler.service.lifecycle_events.cloudevents import (
    DEFINITION_CREATE,
    VERSION_PUBLISH,
    cloud_event,
    definition_source,
)
from treadle.scheduler.service.renderings.v1_definitions import (
    v1_definition,
    v1_version,
    workflow_tags,
)
from treadle.scheduler.store import DefinitionVersion, UnitOfWork
from treadle.scheduler.store.lifecycle_repo import NewLifecycleEvent

__all__ = ["record_new_version"]


def record_new_version(
    uow: UnitOfWork, pinned: PinnedDefinition, stored: DefinitionVersion
) -> None:
    """Store the events of ``stored``, the version of ``pinned`` just published in ``uow``."""
    at = stored.created_at
    version = v1_version(
        pinned.spec, pinned.graph, version=stored.version, author=stored.author, created_at=at
    )
    subject = str(version["definition_id"])
    source = definition_source(pinned.workspace, pinned.ref)
    key = f"definition/{pinned.workspace or 'shared'}/{pinned.ref}/{stored.version}"
    events: list[tuple[str, str, dict[str, object]]] = []
    if stored.version == 1:
        definition = v1_definition(
            pinned.spec,
            latest_version=1,
            tags=workflow_tags(pinned.spec),
            created_at=at,
            updated_at=at,
        )
        events.append((f"{key}/create", DEFINITION_CREATE, definition))
    events.append((f"{key}/publish", VERSION_PUBLISH, version))
    uow.add_lifecycle_events(
        [
            NewLifecycleEvent(
                event_id,
                None,
                kind,
                cloud_event(
                    event_id=event_id,
                    event_type=kind,
                    source=source,
                    subject=subject,
                    time=at,
                    data=data,
                ),
            )
            for event_id, kind, data in events
        ]
    )
