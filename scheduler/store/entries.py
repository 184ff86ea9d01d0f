"""What the store's queries return: frozen snapshots of rows, never live database objects.

Callers (the embedded runner, the relay, the reconciler, the CLI and the API) get plain
values they can keep after the transaction ends, pass between threads and compare in tests.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from treadle.common.access import AuditOutcome, Role
from treadle.common.statuses import AttemptStatus, InquiryPurpose, InquiryStatus, RunStatus
from treadle.scheduler.core.state import TimerKind


@dataclass(frozen=True, slots=True)
class RunSummary:
    """One line of ``treadle runs list``."""

    id: str
    workflow: str
    status: RunStatus
    created_at: datetime | None
    finished_at: datetime | None
    parent_run_id: str | None


@dataclass(frozen=True, slots=True)
class OutboxEntry:
    """A command waiting in the outbox: the run whose decision wrote it, and the command
    encoded by the command codec (the relay decodes it)."""

    id: int
    run_id: str
    payload: Any


@dataclass(frozen=True, slots=True)
class TimerEntry:
    """A scheduled timer of a run (its id is the core's timer id)."""

    id: str
    run_id: str
    kind: TimerKind
    fire_at: datetime


@dataclass(frozen=True, slots=True)
class AttemptEntry:
    """One dispatched attempt, as the reconciler and ``runs show`` see it."""

    attempt_id: str
    run_id: str
    execution_id: int
    position: int
    attempt: int
    action_ref: str
    queue: str | None
    status: AttemptStatus
    worker: str | None
    dispatched_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    deadline: datetime | None
    error: Mapping[str, Any] | None
    reason: str | None
    deliveries: int = 0
    #: The main process id of the worker incarnation that started it (None: not known).
    worker_pid: int | None = None

    @property
    def unit_key(self) -> tuple[str, int, int]:
        """The unit this attempt tried: (run, execution, position)."""
        return (self.run_id, self.execution_id, self.position)

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> AttemptEntry:
        """The attempt of an ``attempts`` row (other columns of a join are left out)."""
        return cls(
            attempt_id=row["attempt_id"],
            run_id=row["run_id"],
            execution_id=row["execution_id"],
            position=row["position"],
            attempt=row["attempt"],
            action_ref=row["action_ref"],
            queue=row["queue"],
            status=AttemptStatus(row["status"]),
            worker=row["worker"],
            dispatched_at=row["dispatched_at"],
            started_at=row["started_at"],
            finished_at=row["finished_at"],
            deadline=row["deadline"],
            error=row["error"],
            reason=row["reason"],
            deliveries=row["deliveries"],
            worker_pid=row["worker_pid"],
        )


@dataclass(frozen=True, slots=True)
class InquiryEntry:
    """A question put to a person and, once answered, the answer."""

    id: str
    run_id: str
    attempt_id: str
    #: The task that asks; ``None`` for a run-level inquiry (the run's budget asks).
    task: str | None
    status: InquiryStatus
    prompt: Any
    schema: Mapping[str, Any] | None
    assigned_to: Any
    deadline: datetime | None
    response: Any
    responder: str | None
    created_at: datetime
    answered_at: datetime | None
    #: Why it was opened: a task's question, a task's escalation, the run's budget.
    purpose: InquiryPurpose = InquiryPurpose.TASK


@dataclass(frozen=True, slots=True)
class DefinitionVersion:
    """One published version of a workflow definition.

    ``created`` tells :meth:`register_definition` callers whether this call published it
    (``False`` when the content was unchanged and the existing version was returned).
    ``documents`` maps file names to their text. ``workspace`` owns it (``''``: shared
    by every workspace).
    """

    ref: str
    version: int
    content_hash: str
    created_at: datetime
    author: str | None
    dialect: str
    documents: Mapping[str, str] = field(default_factory=dict)
    created: bool = False
    workspace: str = ""


@dataclass(frozen=True, slots=True)
class KeyValue:
    """One keystore entry. Show ``value`` only when ``secret`` is false."""

    key: str
    value: Any
    secret: bool
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class TokenEntry:
    """One API token as stored: never the token itself, only its SHA-256 (``token_hash``).

    ``created_by`` is the actor that issued it; ``revoked_at`` and ``expires_at`` end it.
    """

    id: str
    name: str
    role: Role
    workspace: str
    token_hash: str
    created_at: datetime
    created_by: str
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """What to record in the audit log: who (``actor``) did what (``action``, e.g.
    ``run.start``) to what (``target``: a run id, token id, key...) in which workspace, and
    how it ended. ``details`` is a small JSON document (never secrets)."""

    at: datetime
    actor: str
    workspace: str
    action: str
    target: str | None = None
    outcome: AuditOutcome = AuditOutcome.OK
    details: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """An entry of the audit log as stored, with its id (increasing: newer entries have
    higher ids)."""

    id: int
    at: datetime
    actor: str
    workspace: str
    action: str
    target: str | None
    outcome: AuditOutcome
    details: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class RunPage:
    """One page of runs, newest first, and the cursor of the next (None after the last)."""

    runs: tuple[RunSummary, ...]
    next_cursor: str | None
