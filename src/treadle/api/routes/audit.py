"""The audit route: the audit log of the token's workspace, for its admins.

``GET /api/v1/audit`` pages through what ``treadle audit list`` shows, newest first,
filtered by actor, action and time, in the token's workspace only (the CLI on the database
reads every workspace). The log itself is written by every change, whatever its path
(:mod:`treadle.clientlib.audit`); reading it changes nothing and is not recorded.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query

from treadle.api.context import Context
from treadle.api.errors import ERROR_RESPONSES
from treadle.api.models.audit import AuditItem, AuditPage
from treadle.api.security import Admin

__all__ = ["PREFIX", "include", "router"]

#: Where the route is served.
PREFIX = "/api/v1/audit"

router = APIRouter(responses=ERROR_RESPONSES)

#: The most entries one page may hold.
MAX_PAGE = 500

#: The greatest id a cursor may hold (the column is a 64-bit integer at most).
_MAX_ID = 2**63 - 1


@router.get("", summary="Read the audit log", name="list_audit", response_model=AuditPage)
def list_audit(
    *,
    principal: Admin,
    context: Context,
    actor: Annotated[
        str | None, Query(description="Only this actor, e.g. `token:deployer`.")
    ] = None,
    action: Annotated[str | None, Query(description="Only this action, e.g. `run.start`.")] = None,
    since: Annotated[
        datetime | None, Query(description="Only entries at or after this time (ISO 8601).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE, description="Entries per page.")] = 100,
    cursor: Annotated[
        str | None,
        Query(pattern=r"^[0-9]{1,19}$", description="`next_cursor` of the previous page."),
    ] = None,
) -> AuditPage:
    """The entries of the token's workspace, newest first: who did what to what, when,
    and how it ended (`ok`, `refused`, `failed`). Needs the admin role."""
    after_id = min(int(cursor), _MAX_ID) if cursor is not None else None
    with context.reading() as uow:
        records = uow.list_audit(
            workspace=principal.workspace,
            actor=actor,
            action=action,
            since=since,
            after_id=after_id,
            limit=limit + 1,  # one more tells whether there is a next page
        )
    page = records[:limit]
    more = len(records) > limit
    return AuditPage(
        items=[AuditItem.of(record) for record in page],
        next_cursor=str(page[-1].id) if more and page else None,
    )


def include(app: FastAPI) -> None:
    """Serve the route under :data:`PREFIX`."""
    app.include_router(
        router, prefix=PREFIX, tags=["audit"], generate_unique_id_function=lambda r: r.name
    )
