"""Inquiries: questions a run put to a person, and their answers.

Rows are created by ``OpenInquiry`` commands in ``save_runs``; people list and answer them
(``treadle inquiry respond``, the API). Answering is a compare-and-set on ``pending``, so
two people answering at once cannot both win.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import String, bindparam, select, tuple_, update

from treadle.common.errors import ConflictError, NotFound, ParameterError
from treadle.common.statuses import InquiryPurpose, InquiryStatus
from treadle.scheduler.store.base import Repository
from treadle.scheduler.store.codec import encode_value
from treadle.scheduler.store.entries import InquiryEntry
from treadle.scheduler.store.models import inquiries, runs
from treadle.scheduler.store.run_listing import decode_cursor, encode_cursor

#: The most inquiries one page may hold.
MAX_INQUIRY_PAGE = 1000

#: A run's inquiries, oldest first (every run document reads them): built once.
_OF_RUN = (
    select(inquiries)
    .where(inquiries.c.run_id == bindparam("run_id"))
    .order_by(inquiries.c.created_at, inquiries.c.id)
)


@dataclass(frozen=True, slots=True)
class InquiryFilter:
    """Which inquiries to list: every given condition must hold (None means any)."""

    status: InquiryStatus | None = None
    run_id: str | None = None
    #: Only the inquiries of this workspace's runs (the HTTP API sets the token's).
    workspace: str | None = None


@dataclass(frozen=True, slots=True)
class InquiryPage:
    """One page of inquiries, oldest first, and the cursor of the next (None after the last)."""

    inquiries: tuple[InquiryEntry, ...]
    next_cursor: str | None


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
        if status is None and run_id is not None:
            of_run = self._conn.execute(_OF_RUN, {"run_id": run_id}).mappings()
            return [_inquiry(row) for row in of_run]
        stmt = select(inquiries).order_by(inquiries.c.created_at, inquiries.c.id)
        if status is not None:
            stmt = stmt.where(inquiries.c.status == status.value)
        if run_id is not None:
            stmt = stmt.where(inquiries.c.run_id == run_id)
        return [_inquiry(row) for row in self._conn.execute(stmt).mappings()]

    def list_inquiries_page(
        self, where: InquiryFilter, *, limit: int, cursor: str | None = None
    ) -> InquiryPage:
        """Up to ``limit`` inquiries matching ``where``, oldest first, after ``cursor``.

        Keyset pagination on ``(created_at, id)``, as runs are listed: the cursor is the
        last row's, so inquiries opened while someone pages through never shift a page.
        ParameterError for a cursor no page returned or a ``limit`` outside 1..1000.
        """
        if not 1 <= limit <= MAX_INQUIRY_PAGE:
            raise ParameterError(
                [f"a page holds 1 to {MAX_INQUIRY_PAGE} inquiries, not {limit}"], subject="limit"
            )
        stmt = select(inquiries)
        if where.status is not None:
            stmt = stmt.where(inquiries.c.status == where.status.value)
        if where.run_id is not None:
            stmt = stmt.where(inquiries.c.run_id == where.run_id)
        if where.workspace is not None:
            in_workspace = select(runs.c.id).where(runs.c.workspace == where.workspace)
            stmt = stmt.where(inquiries.c.run_id.in_(in_workspace))
        if cursor is not None:
            after_at, after_id = decode_cursor(cursor)
            if after_at is None:  # every inquiry has a creation time
                raise ParameterError(
                    [f"{cursor!r} is not a next cursor a listing returned"], subject="cursor"
                )
            after = tuple_(
                bindparam("after_at", after_at, type_=inquiries.c.created_at.type),
                bindparam("after_id", after_id, type_=String()),
            )
            stmt = stmt.where(tuple_(inquiries.c.created_at, inquiries.c.id) > after)
        stmt = stmt.order_by(inquiries.c.created_at, inquiries.c.id).limit(limit + 1)
        rows = [_inquiry(row) for row in self._conn.execute(stmt).mappings()]
        page = tuple(rows[:limit])
        last = page[-1] if len(rows) > limit else None
        next_cursor = None if last is None else encode_cursor(last.created_at, last.id)
        return InquiryPage(page, next_cursor)

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
        purpose=InquiryPurpose(row["purpose"]),
    )
