"""Inquiries: questions a run put to a person, and their answers.

Rows are created by ``OpenInquiry`` commands in ``save_runs``; people list and answer them
(``treadle inquiry respond``, the API). Answering is a compare-and-set on ``pending``, so
two people answering at once cannot both win.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from treadle.common.errors import ConflictError, NotFound
from treadle.common.statuses import InquiryStatus
from treadle.scheduler.store.base import Repository
from treadle.scheduler.store.codec import encode_value
from treadle.scheduler.store.entries import InquiryEntry
from treadle.scheduler.store.models import inquiries


class InquiryRepository(Repository):
    """Reading and answering inquiries."""

    def get_inquiry(self, inquiry_id: str) -> InquiryEntry:
        row = (
            self._conn.execute(select(inquiries).where(inquiries.c.id == inquiry_id))
            .mappings()
            .first()
        )
        if row is None:
            raise NotFound(f"inquiry {inquiry_id} not found")
        return _inquiry(row)

    def list_inquiries(
        self, *, status: InquiryStatus | None = None, run_id: str | None = None
    ) -> list[InquiryEntry]:
        """Inquiries, oldest first, optionally of one status and/or one run."""
        stmt = select(inquiries).order_by(inquiries.c.created_at, inquiries.c.id)
        if status is not None:
            stmt = stmt.where(inquiries.c.status == status.value)
        if run_id is not None:
            stmt = stmt.where(inquiries.c.run_id == run_id)
        return [_inquiry(row) for row in self._conn.execute(stmt).mappings()]

    def answer_inquiry(
        self, inquiry_id: str, response: Any, responder: str | None, at: datetime
    ) -> None:
        """Record the answer. NotFound if unknown; ConflictError if no longer pending."""
        result = self._conn.execute(
            update(inquiries)
            .where(
                inquiries.c.id == inquiry_id,
                inquiries.c.status == InquiryStatus.PENDING.value,
            )
            .values(
                status=InquiryStatus.ANSWERED.value,
                response=encode_value(response),
                responder=responder,
                answered_at=at,
            )
        )
        if result.rowcount == 1:
            return
        current = self.get_inquiry(inquiry_id)
        raise ConflictError(
            f"inquiry {inquiry_id} is {current.status.value}, it can no longer be answered"
        )


def _inquiry(row: Mapping[Any, Any]) -> InquiryEntry:
    return InquiryEntry(
        id=row["id"],
        run_id=row["run_id"],
        attempt_id=row["attempt_id"],
        task=row["task"],
        status=InquiryStatus(row["status"]),
        prompt=row["prompt"],
        schema=row["schema"],
        assigned_to=row["assigned_to"],
        deadline=row["deadline"],
        response=row["response"],
        responder=row["responder"],
        created_at=row["created_at"],
        answered_at=row["answered_at"],
    )
