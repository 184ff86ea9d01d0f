"""The rules routes: look at the packs' rules and their matches, enable and disable them.

Under ``/api/v1/rules``, acting on the token's workspace only (another workspace's rule is
404): list and show (viewer role), the matches (viewer), enable and disable (operator).
Changes are in the audit log (``rule.enable``, ``rule.disable``). What the routes do lives
in :mod:`treadle.scheduler.service.rules`, shared with ``treadle rules``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query

from treadle.api.audit import audited
from treadle.api.context import Context
from treadle.api.errors import CHANGE_RESPONSES, ERROR_RESPONSES
from treadle.api.models.rules import MatchItem, MatchList, RuleItem, RuleList
from treadle.api.security import Operator, Viewer
from treadle.scheduler.service import rules as service

__all__ = ["PREFIX", "include", "router"]

#: Where the routes are served.
PREFIX = "/api/v1/rules"

router = APIRouter()

Name = Annotated[
    str, Path(min_length=1, max_length=300, description="The rule's ref (or its name).")
]
READ_RESPONSES: dict[int | str, dict[str, Any]] = {**ERROR_RESPONSES, 403: CHANGE_RESPONSES[403]}


@router.get(
    "", summary="List the rules", name="list_rules", response_model=RuleList,
    responses=READ_RESPONSES,
)  # fmt: skip
def list_rules(principal: Viewer, context: Context) -> RuleList:
    """The rules of the token's workspace, by ref, with each timer's next fire."""
    now = context.clock()
    with context.reading() as uow:
        rows = uow.list_rules(principal.workspace)
        items = [RuleItem.model_validate(service.shown(uow, row, now=now)) for row in rows]
    return RuleList(items=items)


@router.get(
    "/{name}", summary="Show a rule", name="get_rule", response_model=RuleItem,
    responses=READ_RESPONSES,
)  # fmt: skip
def get_rule(name: Name, principal: Viewer, context: Context) -> RuleItem:
    """A rule with its schedule, next fire and matches counted by outcome."""
    with context.reading() as uow:
        row = service.find(uow, name, workspace=principal.workspace)
        shown = service.shown(uow, row, now=context.clock(), counts=True)
    return RuleItem.model_validate(shown)


def _switch(name: str, principal: Any, context: Any, *, enabled: bool) -> RuleItem:
    action = "rule.enable" if enabled else "rule.disable"
    with audited(context, principal, action, name) as uow:
        row = service.set_enabled(
            uow, name, enabled, workspace=principal.workspace, now=context.clock()
        )
        shown = service.shown(uow, row, now=context.clock())
    return RuleItem.model_validate(shown)


@router.post(
    "/{name}/enable", summary="Enable a rule", name="enable_rule", response_model=RuleItem,
    responses={**ERROR_RESPONSES, **CHANGE_RESPONSES},
)  # fmt: skip
def enable_rule(name: Name, principal: Operator, context: Context) -> RuleItem:
    """Match again from now on (a timer's schedule resumes; fires skipped stay skipped)."""
    return _switch(name, principal, context, enabled=True)


@router.post(
    "/{name}/disable", summary="Disable a rule", name="disable_rule", response_model=RuleItem,
    responses={**ERROR_RESPONSES, **CHANGE_RESPONSES},
)  # fmt: skip
def disable_rule(name: Name, principal: Operator, context: Context) -> RuleItem:
    """Match nothing until enabled: a timer's fires are recorded as `skipped_paused`."""
    return _switch(name, principal, context, enabled=False)


@router.get(
    "/{name}/matches", summary="List a rule's matches", name="list_rule_matches",
    response_model=MatchList, responses=READ_RESPONSES,
)  # fmt: skip
def list_matches(
    name: Name,
    principal: Viewer,
    context: Context,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> MatchList:
    """The rule's matches, newest first, each with its outcome and run."""
    with context.reading() as uow:
        row = service.find(uow, name, workspace=principal.workspace)
        matches = uow.rule_matches(row.id, limit=limit)
    return MatchList(items=[MatchItem.model_validate(service.shown_match(m)) for m in matches])


def include(app: FastAPI) -> None:
    """Serve the routes under :data:`PREFIX`."""
    app.include_router(
        router,
        prefix=PREFIX,
        tags=["rules"],
        generate_unique_id_function=lambda route: route.name,
    )
