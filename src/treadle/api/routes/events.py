"""``POST /api/v1/events``: an outside event into Treadle, over HTTP.

The route does exactly what :meth:`treadle.Client.send_event` and ``treadle events send
--distributed`` do (:class:`~treadle.scheduler.service.events.EventRouter`): an event id
already recorded is a duplicate and changes nothing, so a caller may retry a send as often
as it likes; the triggers the event matches start their runs; the waits it matches are
released. Nothing runs in the API process: the schedulers carry on from the database.

The send is recorded in the audit log as ``event.send`` (target: the event id) by
:func:`treadle.clientlib.changes.send_event`, as the client's and the CLI's sends are: the
entry commits with the transaction that records the event and releases the waits; a
duplicate, or a send refused before that transaction (an event over the size limit), is
recorded in a transaction of its own. Needs the operator role.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from treadle.api.audit import auditor
from treadle.api.context import Context
from treadle.api.errors import CHANGE_RESPONSES, ERROR_RESPONSES, ErrorResponse
from treadle.api.models.events import EventOutcome, EventRequest
from treadle.api.security import Operator
from treadle.clientlib.changes import send_event as send_audited
from treadle.scheduler.service.events import EventRouter

__all__ = ["PREFIX", "include", "router"]

#: Where the route is served.
PREFIX = "/api/v1/events"

router = APIRouter(responses=ERROR_RESPONSES)


@router.post(
    "",
    summary="Send an outside event",
    name="send_event",
    responses={
        **CHANGE_RESPONSES,
        422: {
            "model": ErrorResponse,
            "description": "The body does not validate, or its data is over the size limit.",
        },
    },
)
def send_event(body: EventRequest, principal: Operator, context: Context) -> EventOutcome:
    """Record the event in the token's workspace, start the runs its triggers start there,
    release the waits of that workspace's runs it matches. Needs the operator role. The
    same `id` again (in that workspace) is a duplicate (`"duplicate": true`) and changes
    nothing; without an `id` Treadle makes one. Answers which runs the event
    started (`started_runs`) or moved on (`updated_runs`), and the workflows whose trigger
    accepted it but could not start (`refused`, with the reason)."""
    starter = context.run_starter()
    sender = EventRouter(
        starter, context.triggers, identity={"login": principal.actor, "via": "api"}
    )
    with context.reaching():  # into the token's workspace, audited as the client's sends are
        outcome = send_audited(
            auditor(context, principal),
            sender,
            body.type,
            subject=body.subject,
            data=body.data,
            event_id=body.id,
        )
    return EventOutcome.model_validate(outcome.as_json())


def include(app: FastAPI) -> None:
    """Serve the route at :data:`PREFIX`."""
    app.include_router(
        router,
        prefix=PREFIX,
        tags=["events"],
        generate_unique_id_function=lambda route: route.name,
    )
