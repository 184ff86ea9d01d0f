"""The bodies of the keystore routes, as the OpenAPI document describes them.

An entry's value is shown unless it is secret: a secret value is never read back, by any
role (templates of runs are its only readers), so it shows as null beside `"secret": true`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["KeyEntry", "KeyList", "KeyWrite"]


class KeyEntry(BaseModel):
    """One keystore entry, read by templates as `keystore.<key>`."""

    key: str
    value: Any = Field(description="The value; always null for a secret entry.")
    secret: bool = Field(description="A secret value is never shown.")
    updated_at: datetime


class KeyList(BaseModel):
    """Every keystore entry, by key."""

    items: list[KeyEntry]


class KeyWrite(BaseModel):
    """The new value of an entry; runs started from now on read it."""

    model_config = ConfigDict(extra="forbid")

    value: Any = Field(description="Any JSON value.")
    secret: bool = Field(default=False, description="Never show this value again.")
