"""The bodies of the webhooks routes, as the OpenAPI document describes them.

A webhook's shared secret is shown once, when Treadle generates it at creation; no other
answer carries it (nor its ciphertext), whoever asks. What checking a delivery involves is
:mod:`treadle.scheduler.service.webhooks`; the signature scheme is
:mod:`treadle.common.webhooks`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from treadle.scheduler.service.webhooks import MAX_SECRET_LENGTH, MIN_SECRET_LENGTH

__all__ = ["WebhookCreate", "WebhookCreated", "WebhookDelivered", "WebhookItem", "WebhookList"]


class WebhookCreate(BaseModel):
    """A new webhook: deliveries to `/api/v1/webhooks/{name}` become events of `event_type`
    in the token's workspace."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(
        min_length=1,
        max_length=100,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="The last part of its URL, unique across the installation: letters, "
        "digits, `.`, `_`, `-`.",
    )
    event_type: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"\S",
        description="The type of the event each delivery becomes (`github.push`); event "
        "triggers of this type start runs.",
    )
    secret: str | None = Field(
        default=None,
        min_length=MIN_SECRET_LENGTH,
        max_length=MAX_SECRET_LENGTH,
        description="The shared secret the sender signs with; leave it out to have one "
        "generated and returned once.",
    )


class WebhookItem(BaseModel):
    """A webhook, never with its secret."""

    name: str
    workspace: str
    event_type: str
    source: Literal["api", "pack"] = Field(
        description="`pack` when a pack's `pack.yaml` declares it (it cannot be deleted "
        "through the API), else `api` (made through the API or the CLI)."
    )
    pack: str | None = Field(description="The pack declaring it.")
    keystore_secret: str | None = Field(
        description="For a pack's webhook: the key of the keystore secret entry holding its "
        "secret (the key, never the value)."
    )
    created_at: datetime
    created_by: str
    url: str = Field(description="The path deliveries are sent to.")


class WebhookCreated(WebhookItem):
    """The new webhook, with its secret when Treadle generated it (shown this once)."""

    secret: str | None = Field(
        description="The generated secret, shown only now; null when the request gave one."
    )


class WebhookList(BaseModel):
    """The workspace's webhooks, by name."""

    items: list[WebhookItem]


class WebhookDelivered(BaseModel):
    """What a delivery did: the event it became, and the runs that event started or moved
    on."""

    event_id: str
    started_runs: list[str] = Field(description="Runs the event's triggers started.")
    updated_runs: list[str] = Field(description="Runs whose waits the event released.")

    @classmethod
    def of(cls, outcome: dict[str, Any]) -> WebhookDelivered:
        return cls(
            event_id=outcome["event_id"],
            started_runs=list(outcome["started_runs"]),
            updated_runs=list(outcome["updated_runs"]),
        )
