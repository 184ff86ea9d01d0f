"""Who a request acts as: its bearer token checked, and the role a route needs enforced.

Every route except the health checks, the OpenAPI document and the docs depends on
:func:`current_principal` (directly or through :func:`require`): the request's
``Authorization: Bearer <token>`` is checked by ``treadle.scheduler.service.access``
``verify`` (in a read-only snapshot) and becomes a
:class:`~treadle.common.access.Principal`. A missing or bad token answers 401 (with
``WWW-Authenticate: Bearer``), a role too low for the route 403, both in the API's error
shape. FastAPI's :class:`HTTPBearer` (``auto_error=False``, so the
401 is ours) makes the OpenAPI document declare the bearer scheme on each such route.

Most requests need no database here: a token verified within
``TREADLE_API_TOKEN_CACHE_SECONDS`` is remembered (``api/token_cache.py``) and the rate
limit admits from requests leased ahead (``api/rate_limit.py``); the dependencies are
``async`` so that such a request takes no thread before its route's. The rest (a token
not remembered, a lease used up, ``last_used_at`` due) goes to the database in a thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from treadle.api.context import ApiContext, Context
from treadle.api.token_cache import digest
from treadle.common.access import Principal, Role
from treadle.common.errors import Forbidden, Unauthenticated
from treadle.scheduler.service.access import principal_of, verify
from treadle.scheduler.store import TokenEntry

__all__ = ["BEARER", "Admin", "Operator", "Viewer", "current_principal", "require"]

#: The security scheme of the OpenAPI document (``bearer``).
BEARER = HTTPBearer(
    scheme_name="bearer",
    description="An API token: `Authorization: Bearer trd_...` (see docs/api.md).",
    auto_error=False,
)


async def current_principal(
    context: Context,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(BEARER)],
) -> Principal:
    """The principal the request's bearer token stands for; Unauthenticated (401) without
    a token, or with one that is invalid, expired or revoked; TooManyRequests (429) past
    its rate limit.

    A token verified lately, with requests of its rate limit leased, is admitted without
    the database and without a thread; anything else is checked in a thread."""
    if credentials is None or not credentials.credentials:
        raise Unauthenticated(
            "this needs an API token: send the header 'Authorization: Bearer <token>'"
        )
    plaintext = credentials.credentials
    now = context.clock()
    key = digest(plaintext)
    entry = context.tokens.lookup(key, now)
    if entry is not None and not context.tokens.use_due(key, entry, now):
        principal = principal_of(entry)
        if context.rate_limit.take(principal, now):
            return principal
    return await run_in_threadpool(_in_database, context, plaintext, key, entry, now)


def _in_database(
    context: ApiContext, plaintext: str, key: str, entry: TokenEntry | None, now: datetime
) -> Principal:
    """:func:`current_principal` where it needs the database: verify the token (unless
    ``entry`` was remembered), note its use when due and lease rate-limit requests."""
    if entry is None:
        with context.reading() as reader:  # a bad token takes no write lock
            entry = verify(reader, plaintext, now)
        context.tokens.remember(key, entry, now)
    principal = principal_of(entry)
    note_use = context.tokens.use_due(key, entry, now)  # about once a minute per token
    admitted = context.rate_limit.take(principal, now)
    if note_use or not admitted:
        with context.writing() as uow:
            if note_use:
                uow.token_used(entry.id, now)
                uow.after_commit(lambda: context.tokens.noted(key, now))
            if not admitted:
                context.rate_limit.lease(uow, principal, now)
    return principal


def require(role: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency giving the request's principal, Forbidden (403) unless its role
    allows what needs ``role``."""

    async def check(principal: Annotated[Principal, Depends(current_principal)]) -> Principal:
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
