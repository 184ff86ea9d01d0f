"""The bodies of the rules routes, as the OpenAPI document describes them.

What a rule means (its trigger, criteria, action and what a match records) is
``docs/rules.md``; the fields are :func:`treadle.scheduler.service.rules.shown`'s, shared
with ``treadle rules --json``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

__all__ = ["MatchItem", "MatchList", "RuleItem", "RuleList"]


class RuleTriggerItem(BaseModel):
    """A core timer (`core.crontimer` ...) or an outside event type, with its parameters."""

    type: str
    parameters: dict[str, Any]


class RuleActionItem(BaseModel):
    """The workflow or action a match starts, with its (templated) parameters."""

    ref: str
    parameters: dict[str, Any]


class RuleItem(BaseModel):
    """A rule from a pack's `rules/` folder."""

    ref: str
    name: str
    workspace: str
    pack: str
    description: str | None
    enabled: bool
    trigger: RuleTriggerItem
    action: RuleActionItem
    criteria: list[str]
    schedule: str | None = Field(description="A timer rule's schedule (`rule:<ref>`).")
    next_fire: datetime | None
    note: str | None = Field(description="Why a one-shot does not fire (its time was past).")
    source: str | None = Field(description="Where the rule is written (file:line:column).")
    matches: dict[str, int] | None = Field(
        default=None, description="How many matches of each outcome (on the single view)."
    )
    updated_at: datetime


class RuleList(BaseModel):
    """The workspace's rules, by ref."""

    items: list[RuleItem]


class MatchItem(BaseModel):
    """One match of a rule and what it did."""

    matched_at: datetime
    trigger_key: str = Field(description="`fire:<nominal time>` or `event:<event id>`.")
    trigger_type: str
    event_id: str | None
    outcome: str = Field(description="`started`, `criteria_false` or `failed_to_start`.")
    run_id: str | None
    reason: str | None
    payload: dict[str, Any] | None = Field(description="A timer's payload (events: see event_id).")
    payload_digest: str = Field(description="SHA-256 of the payload's JSON.")


class MatchList(BaseModel):
    """Matches, newest first."""

    items: list[MatchItem]
