"""The bodies of the inquiries routes, as the OpenAPI document describes them.

An inquiry is shown with every field the store keeps (``treadle inquiry show`` prints the
same), its run's secret values masked; the routes send what
:mod:`treadle.scheduler.service.inquiry_views` builds and these models describe it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from treadle.common.statuses import InquiryPurpose, InquiryStatus

__all__ = ["Inquiry", "InquiryList"]


class Inquiry(BaseModel):
    """A question a run put to a person, and the answer once given."""

    model_config = ConfigDict(populate_by_name=True)

    id: str
    run: str = Field(description="The run that asks.")
    task: str | None = Field(
        description="The task that waits for the answer; null when the run itself asks."
    )
    purpose: InquiryPurpose = Field(
        default=InquiryPurpose.TASK,
        description=(
            "Why it was opened: a task's question (task), a task whose retries are exhausted "
            "(escalation: answer {decision: retry|skip|fail, output?}), or the run's budget "
            "(budget: answer {continue: true|false})."
        ),
    )
    status: InquiryStatus
    prompt: Any = Field(default=None, description="What is asked.")
    response_schema: dict[str, Any] | None = Field(
        default=None,
        alias="schema",
        description="The JSON Schema (2020-12) an answer must satisfy; null: any answer.",
    )
    assigned_to: Any = Field(default=None, description="Who should answer.")
    deadline: datetime | None = Field(
        default=None, description="When the inquiry times out unanswered."
    )
    response: Any = Field(default=None, description="The answer (null until answered).")
    responder: str | None = Field(default=None, description="Who answered.")
    created_at: datetime
    answered_at: datetime | None = None


class InquiryList(BaseModel):
    """A page of inquiries, oldest first; pass `next_cursor` back as `cursor` for the next."""

    items: list[Inquiry]
    next_cursor: str | None = Field(description="The cursor of the next page; null after the last.")
