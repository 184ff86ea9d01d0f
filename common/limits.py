"""Limits that keep a run bounded, with the defaults documented in ``docs/language.md``.

Limits are data: the service reads them from settings and hands them to each run when it
starts, so a run's behaviour never depends on settings changed after it began.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Limits(BaseModel):
    """Bounds on nesting, executions, fan-out and data sizes (all configurable)."""

    model_config = ConfigDict(frozen=True)

    max_depth: int = Field(default=10, ge=1)
    max_task_executions: int = Field(default=1000, ge=1)
    max_items: int = Field(default=10_000, ge=1)
    max_concurrency: int = Field(default=1000, ge=1)
    max_context_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_payload_bytes: int = Field(default=1024 * 1024, ge=1024)
