"""Who a UI request acts as, and the CSRF check every change of the UI passes.

:func:`ui_user` opens the session cookie (:mod:`.sessions`) and checks its token with
:func:`treadle.api.security.current_principal`, the JSON API's own check, so a person in
the UI is exactly the token they logged in with: its role, its workspace, its rate limit,
and its revocation. No cookie (or an expired one) raises Unauthenticated, which the UI's
routes answer with a redirect to the login page (:mod:`.html_route`).

Every form and every script's ``POST`` carries the session's CSRF token (a form field
``csrf``, or the ``X-CSRF-Token`` header); :func:`posted_form` reads the form and refuses
(403) a request without the right one before anything is done. The role a change needs is
checked here again (:meth:`UiUser.need`) even though the page hid the control.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated, Final
from urllib.parse import parse_qs

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials

from treadle.api.context import Context
from treadle.api.security import current_principal
from treadle.api.ui.sessions import Session, open_session
from treadle.common.access import Principal, Role
from treadle.common.errors import Forbidden, LimitExceeded, Unauthenticated

__all__ = ["CSRF_FIELD", "CSRF_HEADER", "UiUser", "User", "posted_form", "ui_user"]

CSRF_FIELD: Final = "csrf"
CSRF_HEADER: Final = "X-CSRF-Token"
#: The largest form the UI reads (an event's data, an answer), in bytes.
MAX_FORM_BYTES: Final = 1_000_000


@dataclass(frozen=True)
class UiUser:
    """The person using the UI: the token's principal and the session."""

    principal: Principal
    session: Session

    def can(self, role: Role) -> bool:
        """Whether the controls needing ``role`` are shown."""
        return self.principal.role.allows(role)

    def need(self, role: Role) -> None:
        """Forbidden (403) unless the role allows what needs ``role``."""
        if not self.can(role):
            raise Forbidden(
                f"{self.principal.actor} is a {self.principal.role.value}; this needs the "
                f"{role.value} role or above"
            )


async def ui_user(request: Request, context: Context) -> UiUser:
    """The request's user; Unauthenticated without a valid session or token."""
    session = open_session(context.store, request, context.clock())
    if session is None:
        raise Unauthenticated("log in with an API token to use the web UI")
    credentials = HTTPAuthorizationCredentials(scheme="Bearer", credentials=session.token)
    principal = await current_principal(context, credentials)
    return UiUser(principal, session)


#: A route parameter: the logged-in user.
User = Annotated[UiUser, Depends(ui_user)]


async def posted_form(request: Request, user: UiUser) -> dict[str, str]:
    """The request's urlencoded form (each field's last value), its CSRF token checked."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise LimitExceeded(f"the form is over {MAX_FORM_BYTES} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    form = {name: values[-1] for name, values in parse_qs(text, keep_blank_values=True).items()}
    supplied = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD, "")
    if not hmac.compare_digest(supplied.encode(), user.session.csrf.encode()):
        raise Forbidden(
            "this form did not carry the session's CSRF token (it may be from an older "
            "page or another site): reload the page and try again"
        )
    return form
