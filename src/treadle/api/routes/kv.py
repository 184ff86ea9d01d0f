"""The keystore routes: list and read entries, set and delete them (admins).

Served under ``/api/v1/kv``: the entries templates read as ``keystore.<key>``, as ``treadle
kv`` manages them (:mod:`treadle.scheduler.service.keystore`). Any role reads; a secret
entry's value is never read back, by anyone: it shows as null beside ``"secret": true``
(only runs read it, into their context, where it is masked too). Setting and deleting need
the admin role, since every run started afterwards reads the keystore; each change commits
with its audit entry (``kv.set``, ``kv.delete``; the value is never recorded). Each
workspace has its own keys: a token reads and writes those of its workspace, and runs of
that workspace read them.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, FastAPI, Path, Response
from fastapi.responses import JSONResponse

from treadle.api.audit import audited
from treadle.api.context import Context
from treadle.api.errors import CHANGE_RESPONSES, ERROR_RESPONSES
from treadle.api.models.kv import KeyEntry, KeyList, KeyWrite
from treadle.api.security import Viewer, require
from treadle.common.access import Principal, Role
from treadle.scheduler.service.keystore import (
    delete_entry,
    keystore_entries,
    keystore_entry,
    set_entry,
)

__all__ = ["PREFIX", "include", "router"]

#: Where the routes are served.
PREFIX = "/api/v1/kv"

router = APIRouter(responses=ERROR_RESPONSES)

#: A route parameter: the principal, who may change what every run reads (admin).
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]

Key = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        description="The entry's key (templates read `keystore.<key>`).",
    ),
]
#: A key to write: it must not start with `_` (reserved), as `treadle kv set` says.
NewKey = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        pattern=r"^[^_]",
        description="The entry's key (templates read `keystore.<key>`); not starting with `_`.",
    ),
]


@router.get("", summary="List the keystore", name="list_keys", response_model=KeyList)
def list_keys(principal: Viewer, context: Context) -> JSONResponse:
    """Every entry of the token's workspace, by key: its value (null for a secret one),
    whether it is secret, and when it was last set."""
    with context.reading() as uow:
        items = keystore_entries(uow, principal.workspace)
    return JSONResponse({"items": items})


@router.get("/{key:path}", summary="One keystore entry", name="get_key", response_model=KeyEntry)
def get_key(key: Key, principal: Viewer, context: Context) -> JSONResponse:
    """The entry; a secret entry answers with `"value": null, "secret": true` (its value is
    never read back). 404 when the token's workspace has no such key."""
    with context.reading() as uow:
        entry = keystore_entry(uow, key, principal.workspace)
    return JSONResponse(entry)


@router.put(
    "/{key:path}",
    summary="Set a keystore entry",
    name="set_key",
    response_model=KeyEntry,
    responses=CHANGE_RESPONSES,
)
def set_key(key: NewKey, body: KeyWrite, principal: Admin, context: Context) -> JSONResponse:
    """Create or replace the entry; runs started from now on read the new value (a run
    keeps the keystore it started with). Needs the admin role. Returns the entry as shown
    (a secret value as null)."""
    now = context.clock()
    max_bytes = context.settings.limits.max_payload_bytes
    with audited(context, principal, "kv.set", key, {"secret": body.secret}) as uow:
        entry = set_entry(
            uow,
            key,
            body.value,
            secret=body.secret,
            at=now,
            max_bytes=max_bytes,
            workspace=principal.workspace,
        )
    return JSONResponse(entry)


@router.delete(
    "/{key:path}",
    summary="Delete a keystore entry",
    name="delete_key",
    status_code=204,
    response_class=Response,
    responses=CHANGE_RESPONSES,
)
def delete_key(key: Key, principal: Admin, context: Context) -> Response:
    """Remove the entry (runs in flight keep their copy). Needs the admin role. 404 when
    there is no such key."""
    with audited(context, principal, "kv.delete", key) as uow:
        delete_entry(uow, key, principal.workspace)
    return Response(status_code=204)


def include(app: FastAPI) -> None:
    """Serve the routes under :data:`PREFIX`."""
    app.include_router(
        router,
        prefix=PREFIX,
        tags=["keystore"],
        generate_unique_id_function=lambda route: route.name,
    )
