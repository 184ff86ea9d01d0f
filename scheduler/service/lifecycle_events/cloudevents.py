"""The CloudEvents Treadle writes for lifecycle changes: their types and their envelope.

Each is a CloudEvents 1.0 event in the structured JSON form: ``specversion``, ``id``
(unique, and the same for every copy of one change, so a consumer can drop a redelivered
copy), ``source``, ``type``, ``subject``, ``time``, ``datacontenttype`` and ``data`` (the
workflows/v1 payload of the change), plus the extension attribute ``traceid`` (the run's
trace id, :mod:`treadle.common.trace_ids`) on run and step events. Pure: no I/O.

The types (``docs/lifecycle-events.md`` has the table):

* a run: ``workflows.changes.run.`` + ``start``, ``pause``, ``resume``, ``cancel``,
  ``compensate`` (compensation began), ``compensated``, ``complete``, ``fail``;
* a step: ``workflows.changes.step.`` + ``start``, ``wait``, ``complete``, ``fail``,
  ``skip``, ``cancel``, ``compensated``;
* a definition: ``workflows.changes.definition.create`` (its first version) and
  ``workflows.changes.version.publish`` (every new version, the first included).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from treadle.common.access import SHARED_WORKSPACE
from treadle.scheduler.core.namespaces import iso
from treadle.scheduler.service.renderings.workflows_v1 import ChangeOf

SPEC_VERSION: Final = "1.0"
#: The media type of a whole CloudEvent as JSON (an HTTP body, a broker message).
CLOUDEVENTS_JSON: Final = "application/cloudevents+json"
#: The media type of ``data``.
DATA_CONTENT_TYPE: Final = "application/json"
#: What every type starts with.
TYPE_PREFIX: Final = "workflows.changes."

#: The type of a run event, by its v1 ``operation``.
RUN_TYPES: Final = {
    "started": "workflows.changes.run.start",
    "paused": "workflows.changes.run.pause",
    "resumed": "workflows.changes.run.resume",
    "cancelled": "workflows.changes.run.cancel",
    "compensating": "workflows.changes.run.compensate",
    "compensated": "workflows.changes.run.compensated",
    "completed": "workflows.changes.run.complete",
    "failed": "workflows.changes.run.fail",
}
#: The type of a step event, by its v1 ``operation``.
STEP_TYPES: Final = {
    "started": "workflows.changes.step.start",
    "waiting": "workflows.changes.step.wait",
    "completed": "workflows.changes.step.complete",
    "failed": "workflows.changes.step.fail",
    "skipped": "workflows.changes.step.skip",
    "cancelled": "workflows.changes.step.cancel",
    "compensated": "workflows.changes.step.compensated",
}
DEFINITION_CREATE: Final = "workflows.changes.definition.create"
VERSION_PUBLISH: Final = "workflows.changes.version.publish"


def change_type(of: ChangeOf, operation: str) -> str:
    """The CloudEvent type of a run's or a step's change with this v1 ``operation``."""
    return (RUN_TYPES if of is ChangeOf.RUN else STEP_TYPES)[operation]


def run_source(workspace: str, run_id: str) -> str:
    """``treadle/<workspace>/runs/<run id>``: where a run's and its steps' events happen."""
    return f"treadle/{workspace}/runs/{run_id}"


def definition_source(workspace: str, ref: str) -> str:
    """``treadle/<workspace>/definitions/<ref>`` (``shared`` for a definition every
    workspace sees)."""
    shown = "shared" if workspace == SHARED_WORKSPACE else workspace
    return f"treadle/{shown}/definitions/{ref}"


def cloud_event(
    *,
    event_id: str,
    event_type: str,
    source: str,
    subject: str,
    time: datetime,
    data: Mapping[str, Any],
    traceid: str | None = None,
) -> dict[str, Any]:
    """A CloudEvent 1.0 in the structured JSON form."""
    event: dict[str, Any] = {
        "specversion": SPEC_VERSION,
        "id": event_id,
        "source": source,
        "type": event_type,
        "subject": subject,
        "time": iso(time),
        "datacontenttype": DATA_CONTENT_TYPE,
    }
    if traceid is not None:
        event["traceid"] = traceid
    event["data"] = dict(data)
    return event
