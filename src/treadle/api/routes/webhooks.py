"""The webhooks routes: admins manage webhooks; outside systems deliver to them, signed.

Under ``/api/v1/webhooks``: creating, listing and deleting the webhooks of the token's
workspace need the admin role, and each change is recorded in the audit log
(``webhook.create``, ``webhook.delete``; never a secret). A delivery, ``POST
/api/v1/webhooks/{name}``, carries no token: its signature
(:mod:`treadle.common.webhooks`) is its authentication, checked by
:func:`~treadle.scheduler.service.webhooks.verify_delivery` before anything else is read.

A delivery that verifies becomes an outside event of the webhook's ``event_type`` (subject
``webhooks/<name>``, data the JSON body, id derived from the signature) in the webhook's
workspace, sent exactly as ``POST /api/v1/events`` sends one
(:class:`~treadle.scheduler.service.events.EventRouter`): its triggers start runs, the waits
it matches are released. Its signature is claimed in the same transaction that records the
event, with the audit entry ``webhook.deliver`` (actor ``webhook:<name>``). A missing or bad
signature, a timestamp out of tolerance or an unknown webhook is 401; a replay 409; a body
that is not JSON 400; and none of them stores anything.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Path, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader

from treadle.api.audit import audited
from treadle.api.context import Context
from treadle.api.errors import CHANGE_RESPONSES, ERROR_RESPONSES, ErrorResponse
from treadle.api.models.webhooks import (
    WebhookCreate,
    WebhookCreated,
    WebhookDelivered,
    WebhookItem,
    WebhookList,
)
from treadle.api.security import Admin
from treadle.common.access import Principal, Role
from treadle.common.errors import ConflictError, ServiceUnavailable, TreadleError, Unauthenticated
from treadle.common.webhooks import SIGNATURE_HEADER, TIMESTAMP_HEADER
from treadle.scheduler.service import webhooks as service
from treadle.scheduler.service.events import EventRouter
from treadle.scheduler.store import UnitOfWork

__all__ = ["PREFIX", "include", "router"]

#: Where the routes are served.
PREFIX = "/api/v1/webhooks"

#: What a 401 of a delivery asks for: a signature, not a bearer token.
SIGNATURE_CHALLENGE: Final = f'HMAC-SHA256 header="{SIGNATURE_HEADER}"'

router = APIRouter()

Name = Annotated[
    str,
    Path(min_length=1, max_length=100, description="The webhook's name."),
]
TimestampHeader = Annotated[
    str | None,
    Header(alias=TIMESTAMP_HEADER, description="The Unix time (seconds) the delivery was signed."),
]
#: The security scheme of a delivery in the OpenAPI document: its signature header.
SIGNATURE = APIKeyHeader(
    name=SIGNATURE_HEADER,
    scheme_name="webhook_signature",
    description="A webhook delivery's signature: `sha256=` and the hex HMAC-SHA256 of "
    '`f"{timestamp}."` + the body, keyed with the webhook\'s secret (see docs/api.md).',
    auto_error=False,
)
SignatureHeader = Annotated[str | None, Depends(SIGNATURE)]

#: The request body a delivery declares in the OpenAPI document.
DELIVERY_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": False,
        "description": "Any JSON value (empty: null); it becomes the event's `data`. "
        "Signed as sent, byte for byte.",
        "content": {"application/json": {"schema": {}}},
    }
}


def _documented(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


DELIVERY_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    400: _documented("The body is not JSON (after the signature verified)."),
    401: _documented(
        "No or a bad signature, a timestamp out of tolerance, or no such webhook; nothing "
        "was stored."
    ),
    409: _documented("A replay: this delivery (its signature) was accepted before."),
    413: _documented("The body is larger than a delivery may be."),
    422: _documented("The body's data is over the size limit."),
    503: _documented("The database cannot be reached."),
}


async def delivery_body(request: Request, context: Context) -> bytes:
    """The raw body as sent (the signature covers it byte for byte), at most twice
    ``max_payload_bytes`` (else 413, before the signature is even looked at)."""
    limit = 2 * context.settings.limits.max_payload_bytes
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"a webhook delivery is at most {limit} bytes")
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > limit:
            raise HTTPException(413, f"a webhook delivery is at most {limit} bytes")
    return bytes(raw)


@router.post(
    "",
    summary="Create a webhook",
    name="create_webhook",
    status_code=201,
    response_model=WebhookCreated,
    responses={**ERROR_RESPONSES, **CHANGE_RESPONSES},
)
def create_webhook(body: WebhookCreate, principal: Admin, context: Context) -> WebhookCreated:
    """Make a webhook of the token's workspace. Without `secret`, one is generated and
    returned in `secret` this once (it is stored encrypted and never shown again). Names
    are unique across the installation: a taken one is 409. Needs the admin role."""
    details = {"event_type": body.event_type, "generated_secret": body.secret is None}
    with audited(context, principal, "webhook.create", body.name, details) as uow:
        entry, generated = service.create(
            uow,
            name=body.name,
            event_type=body.event_type,
            secret=body.secret,
            workspace=principal.workspace,
            created_by=principal.actor,
            now=context.clock(),
        )
    return WebhookCreated.model_validate({**service.shown(entry), "secret": generated})


@router.get(
    "",
    summary="List the webhooks",
    name="list_webhooks",
    response_model=WebhookList,
    responses={**ERROR_RESPONSES, 403: CHANGE_RESPONSES[403]},
)
def list_webhooks(principal: Admin, context: Context) -> WebhookList:
    """The webhooks of the token's workspace, by name, never with a secret. Needs the
    admin role."""
    with context.reading() as uow:
        entries = uow.list_webhooks(principal.workspace)
    return WebhookList(items=[WebhookItem.model_validate(service.shown(e)) for e in entries])


@router.delete(
    "/{name}",
    summary="Delete a webhook",
    name="delete_webhook",
    status_code=204,
    response_class=Response,
    responses={**ERROR_RESPONSES, **CHANGE_RESPONSES},
)
def delete_webhook(name: Name, principal: Admin, context: Context) -> Response:
    """Remove a webhook of the token's workspace: deliveries to it are refused (401) from
    now on. A webhook a pack declares is 409 (remove it from the pack instead); another
    workspace's, or none, 404. Needs the admin role."""
    with audited(context, principal, "webhook.delete", name) as uow:
        service.remove(uow, name, workspace=principal.workspace)
    return Response(status_code=204)


@router.post(
    "/{name}",
    summary="Deliver to a webhook (signed, no token)",
    name="deliver_webhook",
    response_model=WebhookDelivered,
    responses=DELIVERY_RESPONSES,
    openapi_extra=DELIVERY_BODY,
)
def deliver(
    name: Name,
    body: Annotated[bytes, Depends(delivery_body)],
    context: Context,
    timestamp: TimestampHeader = None,
    signature: SignatureHeader = None,
) -> WebhookDelivered:
    """Turn a signed delivery into an outside event of the webhook's type: it starts the
    runs its triggers start and releases the waits it matches. Authenticated by its
    signature, not by a token: `X-Treadle-Timestamp` (Unix seconds, within the server's
    tolerance) and `X-Treadle-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." +
    body)>`. 401 without a valid signature, 409 for a replay; neither stores anything."""
    now = context.clock()
    tolerance = timedelta(seconds=context.settings.webhook_tolerance_seconds)
    try:
        with context.reading() as reader:
            verified = service.verify_delivery(
                reader,
                context.store.keys,
                name=name,
                timestamp=timestamp,
                signature=signature,
                body=body,
                now=now,
                tolerance=tolerance,
            )
            replayed = reader.webhook_delivery_seen(name, verified.signature)
    except Unauthenticated as exc:
        challenge = {"WWW-Authenticate": SIGNATURE_CHALLENGE}
        raise HTTPException(401, str(exc), headers=challenge) from None
    if replayed:
        raise _replayed(name)
    data = _json(body)
    hook = verified.webhook
    event_id = service.delivery_event_id(name, verified.signature)
    principal = Principal(name=f"webhook:{name}", role=Role.OPERATOR, workspace=hook.workspace)
    details = {"event_type": hook.event_type, "event_id": event_id}
    opened = False

    @contextmanager
    def recorded() -> Iterator[UnitOfWork]:
        nonlocal opened
        opened = True
        with audited(context, principal, "webhook.deliver", name, details) as uow:
            claimed = uow.claim_webhook_delivery(
                name, verified.signature, signed_at=verified.signed_at, at=now
            )
            if not claimed:  # the same delivery, accepted meanwhile by another request
                raise _replayed(name)
            uow.prune_webhook_deliveries(now - tolerance)
            yield uow

    starter = context.run_starter()
    identity = {"login": principal.actor, "via": "webhook"}
    sender = EventRouter(starter, context.triggers, identity=identity)
    try:
        with context.reaching():
            outcome = sender.send(
                hook.event_type,
                subject=f"webhooks/{name}",
                data=data,
                event_id=event_id,
                transaction=recorded,
                workspace=hook.workspace,
            )
    except ServiceUnavailable:
        raise
    except TreadleError:
        if not opened:  # refused before the recording transaction (data over the limit)
            with audited(context, principal, "webhook.deliver", name, details):
                raise
        raise
    if outcome.duplicate:  # its event is recorded already: the same delivery again
        raise _replayed(name)
    return WebhookDelivered.of(outcome.as_json())


def _replayed(name: str) -> ConflictError:
    return ConflictError(
        f"this delivery to webhook {name!r} was accepted before (the same signature): "
        "replays are refused; sign each new delivery with its own timestamp"
    )


def _json(body: bytes) -> Any:
    """The delivery's data: its JSON body (an empty body is null); 400 otherwise."""
    if not body.strip():
        return None
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body",),
                    "msg": f"a webhook delivery's body must be JSON in UTF-8: {exc}",
                    "input": {},
                }
            ]
        ) from None


def include(app: FastAPI) -> None:
    """Serve the routes under :data:`PREFIX`."""
    app.include_router(
        router,
        prefix=PREFIX,
        tags=["webhooks"],
        generate_unique_id_function=lambda route: route.name,
    )
