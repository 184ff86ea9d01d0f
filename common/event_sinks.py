"""Webhook sinks of lifecycle events: where they are POSTed besides the broker, as settings.

``TREADLE_LIFECYCLE_SINKS`` is a JSON list, one object per sink::

    [{"name": "crm", "url": "https://crm.example/hooks/treadle", "secret": "whsec_...",
      "types": ["workflows.changes.run.*"], "timeout_seconds": 10}]

A sink gets each lifecycle event whose type matches one of its ``types`` (shell-style
patterns, :mod:`treadle.common.patterns`; ``["*"]`` when left out), signed with its
``secret`` as every Treadle webhook is (:mod:`treadle.common.webhooks`). The sinks are
configuration, not data: the secret and the URL live in the environment of the
schedulers only; the database names a sink by ``name`` alone, so nothing that lists
deliveries can show either. See ``docs/lifecycle-events.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr, field_validator

from treadle.common.patterns import pattern_matches
from treadle.common.webhooks import WEBHOOK_NAME

__all__ = ["EventSink", "EventSinks", "sink_named"]


class EventSink(BaseModel):
    """One webhook sink: its name, where events go, the signing secret and which types."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=f"^{WEBHOOK_NAME.pattern}$")
    url: str
    secret: SecretStr = Field(min_length=1)
    types: tuple[str, ...] = ("*",)
    timeout_seconds: float = Field(default=10.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")) or len(value) < len("http://x"):
            raise ValueError("must be an http:// or https:// URL")
        return value

    @field_validator("types")
    @classmethod
    def _some_types(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        if not value or any(not pattern.strip() for pattern in value):
            raise ValueError("must list at least one type pattern, none empty")
        return value

    def wants(self, event_type: str) -> bool:
        """Whether an event of ``event_type`` goes to this sink."""
        return any(pattern_matches(pattern, event_type) for pattern in self.types)


def _unique_names(sinks: tuple[EventSink, ...]) -> tuple[EventSink, ...]:
    names = [sink.name for sink in sinks]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise ValueError(f"sink names must be unique: {', '.join(repeated)} repeated")
    return sinks


#: The sinks of a deployment, each name once (the ``TREADLE_LIFECYCLE_SINKS`` field's type).
EventSinks = Annotated[tuple[EventSink, ...], AfterValidator(_unique_names)]


def sink_named(sinks: Sequence[EventSink], name: str) -> EventSink | None:
    """The sink called ``name``, if configured."""
    return next((sink for sink in sinks if sink.name == name), None)
