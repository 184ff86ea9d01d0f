"""The PostgreSQL statement that opens a scheduler's step: one round trip for three jobs.

A step that applies workers' results first locks the runs they belong to, marks sent the
outbox rows it published after its last commit, and records the attempts' endings. Each
was a statement of its own, a round trip to the server while the runs wait. On
PostgreSQL they go as one (``WITH locked AS (SELECT ... FOR UPDATE), sent AS (UPDATE
outbox ...), done AS (UPDATE attempts ... RETURNING ...) SELECT ...``), returning the
locked runs' versions and the attempts that were still open.

Every transaction takes its locks in one order, runs (in id order) before attempt rows,
so that two schedulers cannot deadlock. The statement keeps it: the locked runs are the
first branch of its ``UNION ALL``, which PostgreSQL runs to the end before the second, and
the attempts' ``UPDATE`` (which the second branch reads) also reads the locked rows in its
``WHERE``, so no attempt row is touched before every run is held.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import TextClause, text

from treadle.common.statuses import AttemptStatus

_OPEN = (AttemptStatus.QUEUED.value, AttemptStatus.RUNNING.value)

# Only the open statuses (our own enum values) are formatted in; values are parameters.
_RECORD = (
    "UPDATE attempts AS t SET status = u.status, finished_at = u.finished_at, "  # noqa: S608
    "error = u.error, worker = COALESCE(u.worker, t.worker), "
    "started_at = COALESCE(u.started_at, t.started_at), reason = COALESCE(u.reason, t.reason) "
    "FROM unnest(CAST(:ids AS VARCHAR[]), CAST(:statuses AS VARCHAR[]), "
    "CAST(:finished AS TIMESTAMP WITH TIME ZONE[]), CAST(:errors AS JSON[]), "
    "CAST(:workers AS VARCHAR[]), CAST(:started AS TIMESTAMP WITH TIME ZONE[]), "
    "CAST(:reasons AS VARCHAR[])) "
    "AS u(attempt_id, status, finished_at, error, worker, started_at, reason) "
    f"WHERE t.attempt_id = u.attempt_id AND t.status IN {_OPEN!r}{{after_lock}} "
    "RETURNING t.attempt_id, t.action_ref, t.dispatched_at"
)
_MARK_SENT = (
    "sent AS (UPDATE outbox AS o SET sent_at = m.at, "
    "publish_attempts = o.publish_attempts + 1 "
    "FROM unnest(CAST(:sent_ids AS INTEGER[]), CAST(:sent_at AS TIMESTAMP WITH TIME ZONE[])) "
    "AS m(id, at) WHERE o.id = m.id)"
)
_LOCK = (
    "locked AS MATERIALIZED (SELECT id, version, last_seq FROM runs "
    "WHERE id = ANY(CAST(:lock_ids AS VARCHAR[])) ORDER BY id FOR UPDATE)"
)


@cache
def results_statement(*, marking: bool, locking: bool) -> TextClause:
    """Record the endings (``:ids``, ``:statuses``, ...) of open attempts; with
    ``marking``, mark the outbox rows ``:sent_ids`` sent at ``:sent_at``; with
    ``locking``, lock the runs ``:lock_ids`` first.

    Rows: without ``locking``, ``(attempt_id, action_ref, dispatched_at)`` of each attempt
    ended; with it, ``(id, version, last_seq, action_ref, dispatched_at)``, a locked run
    where ``version`` is set, else an attempt ended.
    """
    ahead = [_LOCK] if locking else []
    if marking:
        ahead.append(_MARK_SENT)
    record = _RECORD.format(after_lock=" AND (SELECT count(*) FROM locked) >= 0" if locking else "")
    if not locking:
        return text(f"WITH {', '.join(ahead)} {record}" if ahead else record)
    ahead.append(f"done AS ({record})")
    # Only this module's own text is formatted in; values are parameters.
    return text(
        f"WITH {', '.join(ahead)} "  # noqa: S608
        "SELECT id, version, last_seq, NULL AS action_ref, NULL AS dispatched_at FROM locked "
        "UNION ALL SELECT attempt_id, NULL, NULL, action_ref, dispatched_at FROM done"
    )


__all__ = ["results_statement"]
