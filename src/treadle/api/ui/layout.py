"""What every logged-in page shows around its content: who is logged in, the navigation
the role allows, the CSRF token for its forms, and the emergency-stop banner.

:func:`page` renders a template inside ``base.html`` with those values. The banner lists
the emergency stops holding the user's workspace (the global one, the workspace's own),
read in the same snapshot style as the JSON API's ``GET /emergency-stop``; every role sees
it, since every role's runs stop; only admins get the switch.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

from treadle.api.context import ApiContext
from treadle.api.models.emergency_stop import StopItem
from treadle.api.ui.auth import UiUser
from treadle.api.ui.rendering import render
from treadle.common.access import Role

__all__ = ["page", "stops_holding"]


def stops_holding(context: ApiContext, user: UiUser) -> list[StopItem]:
    """The emergency stops holding the user's workspace now."""
    with context.reading() as uow:
        stops = uow.emergency_stops()
    workspace = user.principal.workspace
    return [StopItem.of(stop) for stop in stops if stop.covers(workspace)]


def page(
    request: Request,
    context: ApiContext,
    user: UiUser,
    template: str,
    *,
    status: int = 200,
    **values: Any,
) -> HTMLResponse:
    """``template`` as a logged-in page (see the module docstring)."""
    return render(
        request,
        template,
        status=status,
        user=user.principal,
        csrf=user.session.csrf,
        can_operate=user.can(Role.OPERATOR),
        is_admin=user.can(Role.ADMIN),
        stops=stops_holding(context, user),
        **values,
    )
