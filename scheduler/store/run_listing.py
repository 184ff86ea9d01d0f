"""Listing runs a page at a time, newest first, by keyset (never ``OFFSET``).

A database holding a hundred thousand runs must list its newest failed runs, or the runs of
one workflow, as fast as an empty one: ``OFFSET`` reads and throws away every row before
the page, and shifts when runs are inserted meanwhile. Here a page ends with a cursor, the
last row's ``(created_at, id)`` as an opaque string; the next page is the rows strictly
after it in the order ``created_at DESC, id DESC``, which the indexes
``(status, created_at, id)``, ``(workflow, created_at, id)`` and ``(created_at, id)`` of
``runs`` serve directly. Runs inserted while someone pages through are newer than any
cursor, so they never shift or repeat a later page.

A run stored without ``created_at`` (none are, but the column allows it) comes after every
dated run, ordered by id: the dated rows are read first, then the undated ones, each
query in index order.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, String, bindparam, select, tuple_

from treadle.common.errors import ParameterError
from treadle.common.statuses import RunStatus
from treadle.scheduler.store.entries import RunPage, RunSummary
from treadle.scheduler.store.models import runs

#: The most runs one page may hold.
MAX_PAGE = 1000

_COLUMNS = (
    runs.c.id,
    runs.c.workflow,
    runs.c.status,
    runs.c.created_at,
    runs.c.finished_at,
    runs.c.parent_run_id,
)


@dataclass(frozen=True, slots=True)
class RunFilter:
    """Which runs to list: every given condition must hold (None means any).

    ``created_after`` is inclusive and ``created_before`` exclusive, so consecutive ranges
    never share a run; either one leaves out runs stored without a creation time.
    """

    status: RunStatus | None = None
    workflow: str | None = None
    parent_run_id: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    #: Only the runs an outside event with this id started (``treadle events send``).
    trigger_event_id: str | None = None
    #: Only the runs of this workspace (the HTTP API always sets it to the token's).
    workspace: str | None = None


def encode_cursor(created_at: datetime | None, run_id: str) -> str:
    """The opaque cursor of a page ending at this run."""
    moment = created_at.isoformat() if created_at is not None else None
    raw = json.dumps([moment, run_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime | None, str]:
    """``(created_at, id)`` of a cursor from :func:`encode_cursor`; ParameterError otherwise."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        moment, run_id = json.loads(raw)
        created_at = datetime.fromisoformat(moment) if moment is not None else None
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise _bad_cursor(cursor) from None
    if not isinstance(run_id, str) or (created_at is not None and created_at.tzinfo is None):
        raise _bad_cursor(cursor)
    return created_at, run_id


def _bad_cursor(cursor: str) -> ParameterError:
    return ParameterError([f"{cursor!r} is not a next cursor a listing returned"], subject="cursor")


def list_run_page(
    connection: Connection, where: RunFilter, *, limit: int, cursor: str | None
) -> RunPage:
    """The ``limit`` newest runs matching ``where`` after ``cursor`` (from the start if None)."""
    if not 1 <= limit <= MAX_PAGE:
        raise ParameterError([f"a page holds 1 to {MAX_PAGE} runs, not {limit}"], subject="limit")
    after_at, after_id = decode_cursor(cursor) if cursor is not None else (None, None)
    rows: list[Mapping[Any, Any]] = []
    if after_id is None or after_at is not None:
        dated = _filtered(where).where(runs.c.created_at.is_not(None))
        if after_at is not None:
            after = tuple_(
                bindparam("after_at", after_at, type_=runs.c.created_at.type),
                bindparam("after_id", after_id, type_=String()),
            )
            dated = dated.where(tuple_(runs.c.created_at, runs.c.id) < after)
        dated = dated.order_by(runs.c.created_at.desc(), runs.c.id.desc()).limit(limit + 1)
        rows.extend(connection.execute(dated).mappings())
    ranged = where.created_after is not None or where.created_before is not None
    if len(rows) <= limit and not ranged:
        undated = _filtered(where).where(runs.c.created_at.is_(None))
        if after_at is None and after_id is not None:
            undated = undated.where(runs.c.id < after_id)
        undated = undated.order_by(runs.c.id.desc()).limit(limit + 1 - len(rows))
        rows.extend(connection.execute(undated).mappings())
    summaries = tuple(_summary(row) for row in rows[:limit])
    next_cursor = None
    if len(rows) > limit:
        last = summaries[-1]
        next_cursor = encode_cursor(last.created_at, last.id)
    return RunPage(summaries, next_cursor)


def _filtered(where: RunFilter) -> Select[Any]:
    stmt = select(*_COLUMNS)
    if where.status is not None:
        stmt = stmt.where(runs.c.status == where.status.value)
    if where.workflow is not None:
        stmt = stmt.where(runs.c.workflow == where.workflow)
    if where.parent_run_id is not None:
        stmt = stmt.where(runs.c.parent_run_id == where.parent_run_id)
    if where.created_after is not None:
        stmt = stmt.where(runs.c.created_at >= where.created_after)
    if where.created_before is not None:
        stmt = stmt.where(runs.c.created_at < where.created_before)
    if where.trigger_event_id is not None:
        stmt = stmt.where(runs.c.trigger_event_id == where.trigger_event_id)
    if where.workspace is not None:
        stmt = stmt.where(runs.c.workspace == where.workspace)
    return stmt


def _summary(row: Mapping[Any, Any]) -> RunSummary:
    return RunSummary(
        id=row["id"],
        workflow=row["workflow"],
        status=RunStatus(row["status"]),
        created_at=row["created_at"],
        finished_at=row["finished_at"],
        parent_run_id=row["parent_run_id"],
    )
