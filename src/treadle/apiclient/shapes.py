"""What the API's answers are, as the database client returns them.

The API sends a run as the run document, which :class:`~treadle.clientlib.views.RunInfo`
reads as it is, and its lists in shapes of their own; these turn the lists into what
:class:`treadle.Client` returns for the same call (a ``RunPage`` of ``RunSummary``,
``VersionInfo``, ``EventOutcome``), with times as aware datetimes.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from treadle.clientlib.version_info import VersionInfo
from treadle.common.statuses import RunStatus
from treadle.scheduler.service.event_outcome import EventOutcome
from treadle.scheduler.store.entries import RunPage, RunSummary

__all__ = ["event_outcome", "moment", "run_page", "versions_of"]


def moment(value: Any) -> datetime | None:
    """An ISO time the API sent (``...Z``), or None."""
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def run_page(page: Mapping[str, Any]) -> RunPage:
    """``GET /runs``: ``{"items": [{"id", "workflow", "status", "created_at",
    "finished_at", "parent_run"}], "next_cursor"}``."""
    runs = tuple(
        RunSummary(
            id=str(item["id"]),
            workflow=str(item["workflow"]),
            status=RunStatus(item["status"]),
            created_at=moment(item.get("created_at")),
            finished_at=moment(item.get("finished_at")),
            parent_run_id=item.get("parent_run"),
        )
        for item in page["items"]
    )
    return RunPage(runs=runs, next_cursor=page.get("next_cursor"))


def versions_of(answer: Mapping[str, Any], ref: str) -> list[VersionInfo]:
    """``GET /workflows/{ref}/versions``: ``{"workflow", "versions": [{"version",
    "content_hash", "author", "created_at", "dialect", "runs", "deleted"}]}``."""
    return [
        VersionInfo(
            ref=str(answer.get("workflow") or ref),
            version=int(row["version"]),
            content_hash=str(row["content_hash"]),
            author=row.get("author"),
            created_at=datetime.fromisoformat(row["created_at"]),
            dialect=str(row["dialect"]),
            runs=int(row["runs"]),
        )
        for row in answer["versions"]
    ]


def event_outcome(answer: Mapping[str, Any]) -> EventOutcome:
    """``POST /events``: ``{"event_id", "duplicate", "started_runs", "updated_runs",
    "refused"}``."""
    return EventOutcome(
        event_id=str(answer["event_id"]),
        duplicate=bool(answer.get("duplicate", False)),
        started_runs=[str(run) for run in answer.get("started_runs", [])],
        updated_runs=[str(run) for run in answer.get("updated_runs", [])],
        refused={str(k): str(v) for k, v in (answer.get("refused") or {}).items()},
    )
