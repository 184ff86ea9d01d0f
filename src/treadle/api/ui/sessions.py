"""The web UI's session: the API token a person logged in with, sealed in a cookie.

A person logs in with an API token (``treadle tokens create``). The UI keeps no session
table: the cookie holds the token and the session's CSRF token, encrypted and
authenticated with the store's key (``TREADLE_SECRET_KEY``; on SQLite the key file the
store generates beside the database), so every API process and every ``--workers`` worker
opens it, and a restart keeps people logged in. Each request opens the cookie and checks
the token exactly as a bearer token is checked (:func:`treadle.api.security.current_principal`:
the token cache, expiry, revocation, the rate limit), so roles and workspaces apply as
for the JSON API, and revoking the token ends its sessions.

The cookie is ``HttpOnly`` (no script reads it), ``SameSite=Strict`` (no other site's
page sends it), ``Secure`` when the request came over HTTPS, and lives at most
:data:`SESSION_SECONDS`; logging out deletes it. Nothing in it is readable without the key.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from starlette.requests import Request
from starlette.responses import Response

from treadle.common.errors import TreadleError
from treadle.scheduler.store import Store

__all__ = [
    "LOGIN_COOKIE",
    "SESSION_COOKIE",
    "SESSION_SECONDS",
    "Session",
    "open_session",
    "seal_session",
    "set_cookie",
]

#: The session cookie's name, and the short-lived one guarding the login form.
SESSION_COOKIE: Final = "treadle_session"
LOGIN_COOKIE: Final = "treadle_login"
#: How long a session lasts after logging in (8 hours), in seconds.
SESSION_SECONDS: Final = 8 * 3600
#: What a sealed session says it is, so no other ciphertext of the key passes for one.
_PURPOSE: Final = "treadle-ui-session"


@dataclass(frozen=True)
class Session:
    """An open session: the token it acts with, its CSRF token, and when it began."""

    token: str
    csrf: str
    issued_at: float

    @classmethod
    def new(cls, token: str, now: datetime) -> Session:
        return cls(token=token, csrf=secrets.token_urlsafe(32), issued_at=now.timestamp())


def seal_session(store: Store, session: Session) -> str:
    """The cookie's value: the session encrypted and signed with the store's key."""
    return store.keys.keyring().encrypt(
        {"p": _PURPOSE, "t": session.token, "c": session.csrf, "i": session.issued_at}
    )


def open_session(store: Store, request: Request, now: datetime) -> Session | None:
    """The request's session; None without a cookie, or with one that is not ours, was
    tampered with, or has expired."""
    sealed = request.cookies.get(SESSION_COOKIE)
    if not sealed:
        return None
    try:
        value = store.keys.keyring().decrypt(sealed)
    except (TreadleError, ValueError):
        return None
    if not isinstance(value, dict) or value.get("p") != _PURPOSE:
        return None
    token, csrf, issued = value.get("t"), value.get("c"), value.get("i")
    if not isinstance(token, str) or not isinstance(csrf, str):
        return None
    if not isinstance(issued, int | float) or not 0 <= now.timestamp() - issued < SESSION_SECONDS:
        return None
    return Session(token=token, csrf=csrf, issued_at=float(issued))


def set_cookie(
    response: Response, request: Request, name: str, value: str, *, max_age: int, path: str
) -> None:
    """Set ``name`` HttpOnly, SameSite=Strict, Secure over HTTPS (see the module docstring)."""
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
