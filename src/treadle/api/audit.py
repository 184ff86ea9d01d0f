"""Recording what API callers change in the audit log, the same way for every router.

A change and its audit entry commit together: :func:`audited` yields the unit of work the
change is made in and records ``ok`` in it, so there is never a change without its entry
(nor an entry for a change that rolled back). When the change raises, the transaction
rolls back and the attempt is recorded in a transaction of its own: ``refused`` when the
request did not fit (a ConflictError, such as a control the run's status does not allow,
or Forbidden), ``failed`` for any other Treadle error (an unknown run...). Then the error
goes on to the error handlers. Unexpected exceptions (bugs) are not recorded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from treadle.api.context import ApiContext
from treadle.common.access import AuditOutcome, Principal
from treadle.common.errors import ConflictError, Forbidden, ServiceUnavailable, TreadleError
from treadle.scheduler.store import UnitOfWork
from treadle.scheduler.store.entries import AuditEntry

__all__ = ["audited"]


@contextmanager
def audited(
    context: ApiContext,
    principal: Principal,
    action: str,
    target: str | None,
    details: Mapping[str, Any] | None = None,
) -> Iterator[UnitOfWork]:
    """A transaction for ``principal`` doing ``action`` (``run.pause``...) to ``target``,
    recorded in the audit log with how it ended (see the module docstring)."""

    def entry(outcome: AuditOutcome, noted: Mapping[str, Any] | None) -> AuditEntry:
        return AuditEntry(
            at=context.clock(),
            actor=principal.actor,
            workspace=principal.workspace,
            action=action,
            target=target,
            outcome=outcome,
            details=dict(noted) if noted else None,
        )

    try:
        with context.writing() as uow:
            yield uow
            uow.record_audit(entry(AuditOutcome.OK, details))
    except ServiceUnavailable:
        raise  # nothing can be recorded in a database that cannot be reached
    except TreadleError as exc:
        refused = isinstance(exc, ConflictError | Forbidden)
        outcome = AuditOutcome.REFUSED if refused else AuditOutcome.FAILED
        with context.writing() as uow:
            uow.record_audit(entry(outcome, {**(details or {}), "error": str(exc)}))
        raise
