"""The packs routes: list the registered packs, and reload them from the server's pack paths.

A pack's code reaches the workers through their pack paths or images, never through the
API: these routes read the registry the scheduler keeps in the database, and reload it
from the folders the API server itself was given (the shipped packs, then
``TREADLE_PACK_PATHS``), as a scheduler does when it starts. Listing needs any role,
reloading the admin role; a reload is recorded in the audit log (``pack.reload``) with
the workflows it published. The rules are :mod:`treadle.clientlib.pack_admin`'s.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Query
from fastapi.routing import APIRoute

from treadle.api.audit import audited
from treadle.api.context import Context
from treadle.api.errors import CHANGE_RESPONSES, ERROR_RESPONSES
from treadle.api.models.workflows import PackItem, PackList, ReloadResult
from treadle.api.security import Admin, Viewer
from treadle.clientlib.pack_admin import (
    MAX_PACK_PAGE,
    list_packs,
    reload_packs,
    server_pack_paths,
    server_packs,
)

__all__ = ["PREFIX", "include", "router"]

PREFIX = "/api/v1/packs"

router = APIRouter(responses=ERROR_RESPONSES)


@router.get("", summary="List the registered packs", name="list_packs", response_model=PackList)
def get_packs(
    principal: Viewer,
    context: Context,
    limit: Annotated[int, Query(ge=1, le=MAX_PACK_PAGE, description="Packs per page.")] = 100,
    cursor: Annotated[
        str | None,
        Query(description="The `next_cursor` of the previous page; omit it for the first."),
    ] = None,
) -> PackList:
    """The packs the scheduler (or a reload) registered, by name: version, folder, and
    the refs of their workflows and actions."""
    del principal
    with context.reading() as uow:
        page = list_packs(uow, limit=limit, cursor=cursor)
    return PackList(items=[PackItem.of(info) for info in page.packs], next_cursor=page.next_cursor)


@router.post(
    "/reload",
    summary="Reload the packs from the server's pack paths",
    name="reload_packs",
    response_model=ReloadResult,
    responses=CHANGE_RESPONSES,
)
def reload(principal: Admin, context: Context) -> ReloadResult:
    """Load the packs from the API server's pack paths (the shipped packs, then
    `TREADLE_PACK_PATHS`), register them and publish their workflows (a new version only
    where one changed), in one transaction. Any error in a pack or workflow is 422 with
    every problem (file, line, column) and changes nothing. The answer says what changed.
    Running schedulers keep the packs they loaded until they restart. Needs the admin
    role."""
    paths = server_pack_paths(context.settings)
    loader = server_packs(context.settings)  # the files before the transaction
    details: dict[str, Any] = {"paths": paths}
    # the audit entry is written when the block ends: what is added to details goes in it
    with audited(context, principal, "pack.reload", None, details) as uow:
        report = reload_packs(
            context.store,
            uow,
            loader,
            paths=paths,
            author=principal.actor,
            clock=context.clock,
        )
        details["published"] = [f"{item.ref} v{item.version}" for item in report.published]
    return ReloadResult.of(report)


def _operation_id(route: APIRoute) -> str:
    return route.name


def include(app: FastAPI) -> None:
    """Serve the routes under :data:`PREFIX`, each operation id its route's name."""
    app.include_router(
        router, prefix=PREFIX, tags=["packs"], generate_unique_id_function=_operation_id
    )
