"""The audit log: who did what, to what, in which workspace, and how it ended.

Entries are only ever added. The database enforces it (triggers refuse UPDATE and DELETE,
and TRUNCATE on PostgreSQL; migration 0009), so no code path or bug can rewrite history;
only an account allowed to change the schema could drop the triggers. It is not per-run
storage: the retention purge (``retention_repo.py``) never touches it, since it must
outlive the runs it mentions; keeping it bounded is the database administrator's call.

Reading pages newest first by id (keyset pagination): ``after_id`` is the last id of the
previous page, and the next page holds the entries older than it, so a page costs the same
wherever it starts and entries recorded meanwhile never shift the pages.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import RowMapping, select

from treadle.common.access import AuditOutcome
from treadle.scheduler.store.base import Repository
from treadle.scheduler.store.entries import AuditEntry, AuditRecord
from treadle.scheduler.store.models import audit_log

#: The most entries one page may hold.
MAX_AUDIT_PAGE = 1000


class AuditRepository(Repository):
    """Recording audit entries and reading them back, newest first."""

    def record_audit(self, entry: AuditEntry) -> int:
        """Add ``entry`` to the audit log; its id."""
        result = self._conn.execute(
            audit_log.insert(),
            {
                "at": entry.at,
                "actor": entry.actor,
                "workspace": entry.workspace,
                "action": entry.action,
                "target": entry.target,
                "outcome": AuditOutcome(entry.outcome).value,
                "details": dict(entry.details) if entry.details is not None else None,
            },
        )
        primary_key = result.inserted_primary_key
        assert primary_key is not None  # an INSERT of one row always has one
        return int(primary_key[0])

    def list_audit(
        self,
        *,
        workspace: str | None,
        actor: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        after_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditRecord]:
        """Up to ``limit`` entries, newest first, matching every filter given.

        ``workspace=None`` reads every workspace (an admin's view); ``actor`` and
        ``action`` match exactly; ``since`` keeps entries at or after that time;
        ``after_id`` keeps entries older than that id (the previous page's last id).
        """
        if not 1 <= limit <= MAX_AUDIT_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_AUDIT_PAGE}, got {limit}")
        stmt = select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
        if workspace is not None:
            stmt = stmt.where(audit_log.c.workspace == workspace)
        if actor is not None:
            stmt = stmt.where(audit_log.c.actor == actor)
        if action is not None:
            stmt = stmt.where(audit_log.c.action == action)
        if since is not None:
            stmt = stmt.where(audit_log.c.at >= since)
        if after_id is not None:
            stmt = stmt.where(audit_log.c.id < after_id)
        return [_record(row) for row in self._conn.execute(stmt).mappings()]


def _record(row: RowMapping) -> AuditRecord:
    return AuditRecord(
        id=int(row["id"]),
        at=row["at"],
        actor=row["actor"],
        workspace=row["workspace"],
        action=row["action"],
        target=row["target"],
        outcome=AuditOutcome(row["outcome"]),
        details=row["details"],
    )
