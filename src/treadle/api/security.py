"""Who a request acts as: its bearer token checked, and the role a route needs enforced.

Every route except the health checks, the OpenAPI document and the docs depends on
:func:`current_principal` (directly or through :func:`require`): the request's
``Authorization: Bearer <token>`` is checked by ``treadle.scheduler.service.access``
``verify`` (in a read-only snapshot) and becomes a
:class:`~treadle.common.access.Principal`. A missing or bad token answers 401 (with
``WWW-Authenticate: Bearer``), a role too low for the route 403, both in the API's error
shape. FastAPI's :class:`HTTPBearer` (``auto_error=False``, so the
401 is ours) makes the OpenAPI document declare the bearer scheme on each such route.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from treadle.api.context import Context
from treadle.common.access import Principal, Role
from treadle.common.errors import Forbidden, Unauthenticated
from treadle.scheduler.service.access import principal_of, use_to_note, verify

__all__ = ["BEARER", "Admin", "Operator", "Viewer", "current_principal", "require"]

#: The security scheme of the OpenAPI document (``bearer``).
BEARER = HTTPBearer(
    scheme_name="bearer",
    description="An API token: `Authorization: Bearer trd_...` (see docs/api.md).",
    auto_error=False,
)


def current_principal(
    context: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> Principal:
    """The principal the request's bearer token stands for; Unauthenticated (401) without
    a token, or with one that is invalid, expired or revoked."""
    if credentials is None or not credentials.credentials:
        raise Unauthenticated(
            "this needs an API token: send the header 'Authorization: Bearer <token>'"
        )
    now = context.clock()
    with context.reading() as reader:  # a bad token takes no write lock
        entry = verify(reader, credentials.credentials, now)
    principal = principal_of(entry)
    note_use = use_to_note(entry, now)  # about once a minute per token
    if note_use or context.rate_limit.per_minute:
        with context.writing() as uow:
            if note_use:
                uow.token_used(entry.id, now)
            context.rate_limit.admit(uow, principal, now)
    return principal


def require(role: Role) -> Callable[[Principal], Principal]:
    """A dependency giving the request's principal, Forbidden (403) unless its role
    allows what needs ``role``."""

    def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
        if not principal.role.allows(role):
            raise Forbidden(
                f"{principal.actor} is a {principal.role.value}; this needs the "
                f"{role.value} role or above"
            )
        return principal

    check.__name__ = f"require_{role.value}"
    return check


#: A route parameter: the principal, who may read (any role).
Viewer = Annotated[Principal, Depends(require(Role.VIEWER))]
#: A route parameter: the principal, who may start and control runs (operator or admin).
Operator = Annotated[Principal, Depends(require(Role.OPERATOR))]
#: A route parameter: the principal, who may manage workflows and packs (admin only).
Admin = Annotated[Principal, Depends(require(Role.ADMIN))]
