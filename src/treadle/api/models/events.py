"""The bodies of ``POST /api/v1/events``: an outside event, and what sending it did.

The same event and outcome as ``treadle events send`` and :meth:`treadle.Client.send_event`
(:mod:`treadle.scheduler.service.events`): the route only checks the shape of the body.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["EventOutcome", "EventRequest"]


class EventRequest(BaseModel):
    """An outside event. The same `id` twice is a duplicate: nothing happens the second
    time, so retrying a send is always safe."""

    model_config = ConfigDict(extra="forbid")

    id: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        pattern=r"\S",
        description="The event's id, ideally the one it has where it comes from; without "
        "one, Treadle makes one (`ev-<16 hex digits>`).",
    )
    type: str = Field(
        min_length=1,
        max_length=200,
        pattern=r"\S",
        description="What happened: `mail.received`.",
    )
    subject: str | None = Field(
        default=None, max_length=1000, description="What the event is about: `contacts/c-1`."
    )
    data: Any = Field(description="Any JSON value (at most `max_payload_bytes`, 1 MB).")


class EventOutcome(BaseModel):
    """What sending the event did."""

    event_id: str
    duplicate: bool = Field(description="The id was recorded before: nothing happened.")
    started_runs: list[str] = Field(description="Runs the event's triggers started.")
    updated_runs: list[str] = Field(description="Runs whose waits the event released.")
    refused: dict[str, str] = Field(
        description="Workflows whose trigger accepted the event but could not start a run, "
        "with the reason."
    )
