"""Follow a run through the HTTP API: ``treadle run --api`` watching the services.

The API shows a run as its run document, nothing else, so this is
:class:`~treadle.cli.follow_db.DatabaseFollower` on documents: it polls ``GET /runs/{id}``
(with the same backoff as every wait, :func:`~treadle.clientlib.polling.poll`), hands each
changed document to the progress lines, and stops when the run has ended, when only people
or outside events can move it (:func:`only_waits`, read from the document), or when the
caller's patience (``--wait-timeout``) runs out.

:class:`DocumentProgress` prints the lines :class:`~treadle.cli.progress.LineProgress`
prints for a run state (``  ✓ task succeeded in 0.12s``), from the document's tasks.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from treadle.cli.clients import CommandClient
from treadle.cli.progress import _MARKS
from treadle.clientlib.polling import Look, poll
from treadle.common.errors import NotFound
from treadle.common.statuses import RunStatus, TaskStatus

__all__ = ["DocumentProgress", "FollowedDocument", "follow_documents", "only_waits"]

#: Child runs deeper than this are not looked into (the scheduler's own nesting limit is lower).
MAX_CHILD_DEPTH = 32

Document = dict[str, Any]


@dataclass(frozen=True)
class FollowedDocument:
    """Where following stopped: the run's last document, and why it stopped before the end."""

    document: Document
    waiting: bool = False
    gave_up: bool = False


def _moment(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if isinstance(value, str) else None


def _counts(task: Document) -> dict[TaskStatus, int]:
    summary = task.get("items_summary") or {}
    return {TaskStatus(status): int(n) for status, n in (summary.get("by_status") or {}).items()}


def only_waits(document: Document, child: Callable[[str], Document | None], depth: int = 0) -> bool:
    """Whether nothing but people or outside events can move the run now, as far as its
    document tells: some task (or item) waits, and none is scheduled or running, but for
    a child run that itself only waits. A run that has ended does not wait."""
    if RunStatus(document["status"]).is_terminal or depth > MAX_CHILD_DEPTH:
        return False
    waiting = False
    for task in document["tasks"]:
        status = TaskStatus(task["status"])
        if status.is_terminal:
            continue
        if status is TaskStatus.WAITING and "items_summary" not in task:
            waiting = True
            continue
        if "items_summary" in task:
            counts = _counts(task)
            if counts.get(TaskStatus.RUNNING) or counts.get(TaskStatus.SCHEDULED):
                return False
            waiting = waiting or bool(counts.get(TaskStatus.WAITING))
            continue
        child_run = task.get("child_run")
        if status is not TaskStatus.RUNNING or child_run is None:
            return False  # scheduled (a delay), or an attempt in flight or backing off
        shown = child(str(child_run))
        if shown is None or not only_waits(shown, child, depth + 1):
            return False
        waiting = True
    return waiting


def follow_documents(
    client: CommandClient,
    run_id: str,
    *,
    on_change: Callable[[Document], None] | None = None,
    wait_timeout: float | None = None,
    poll_interval: float = 0.05,
    max_interval: float = 0.5,
) -> FollowedDocument:
    """Poll the run's document until it ends, only waits, or ``wait_timeout`` has passed."""
    seen: Document | None = None

    def child(child_id: str) -> Document | None:
        try:
            return client.get_document(child_id)
        except NotFound:  # its start is in flight
            return None

    def look() -> Look[FollowedDocument]:
        nonlocal seen
        document = client.get_document(run_id)
        changed, seen = document != seen, document
        if changed and on_change is not None:
            on_change(document)
        if RunStatus(document["status"]).is_terminal:
            return Look(FollowedDocument(document), done=True, changed=changed)
        if only_waits(document, child):
            return Look(FollowedDocument(document, waiting=True), done=True, changed=changed)
        return Look(FollowedDocument(document, gave_up=True), changed=changed)

    polled = poll(
        look, interval=poll_interval, max_interval=max_interval, growth=1.5, timeout=wait_timeout
    )
    return polled.value


class DocumentProgress:
    """One line per change of a task execution's status, from run documents."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream or sys.stderr
        self._seen: dict[int, str] = {}

    def start(self, run_id: str, workflow: str) -> None:
        self._stream.write(f"run {run_id} of {workflow}\n")
        self._stream.flush()

    def update(self, document: Document) -> None:
        now = _moment(document.get("finished_at")) or datetime.now(UTC)
        for position, task in enumerate(document["tasks"]):
            key = int(task.get("execution") or position)
            status = TaskStatus(task["status"])
            if self._seen.get(key) == status.value:
                continue
            self._seen[key] = status.value
            mark, _ = _MARKS[status]
            line = f"  {mark} {task['name']} {status.value}"
            summary = task.get("items_summary")
            if summary is not None:
                done = sum(n for state, n in _counts(task).items() if state.is_terminal)
                line += f" ({done}/{summary['total']} items)"
            started = _moment(task.get("started_at"))
            if status.is_terminal and started is not None:
                end = _moment(task.get("finished_at")) or now
                line += f" in {(end - started).total_seconds():.2f}s"
            error = task.get("error")
            if error and status.is_unsuccessful:
                line += f": {error.get('message', '')}"
            self._stream.write(line + "\n")
        self._stream.flush()

    def finish(self, document: Document, *, waiting: bool = False) -> None:
        self.update(document)
        status = "waiting" if waiting else document["status"]
        self._stream.write(f"run {document['id']} {status}\n")
        self._stream.flush()
