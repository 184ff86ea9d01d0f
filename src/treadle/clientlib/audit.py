"""Recording changes in the audit log the same way, whoever makes them: the HTTP API,
:class:`treadle.Client` and the ``treadle`` commands on the database.

A change and its audit entries commit together: :func:`audited` yields the unit of work the
change is made in and records each :class:`Change` as ``ok`` in it, so there is never a
change without its entry (nor an entry for a change that rolled back). When the change
raises, the transaction rolls back and the attempt is recorded in a transaction of its
own: ``refused`` when it did not fit (a ConflictError, such as a control the run's status
does not allow, or Forbidden), ``failed`` for any other Treadle error (an unknown run, bad
parameters...), with the error's message in the details. Then the error goes on.
Unexpected exceptions (bugs) are not recorded, nor is anything when the database cannot be
reached.

Who: a :class:`~treadle.common.access.Principal`. Through the API it is the request's token
(``token:<name>``); on the database it is :func:`database_principal`: ``client:<login>`` for
an application's :class:`treadle.Client`, ``cli:<login>`` for the ``treadle`` commands, in
the default workspace (whoever reaches the database administers Treadle).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from treadle.common.access import DEFAULT_WORKSPACE, AuditOutcome, Principal, Role
from treadle.common.errors import ConflictError, Forbidden, ServiceUnavailable, TreadleError
from treadle.common.settings import os_login
from treadle.scheduler.store import UnitOfWork
from treadle.scheduler.store.entries import AuditEntry

__all__ = ["Auditor", "Change", "Writing", "audited", "database_principal", "record_attempt"]

#: Opens one transaction (``Store.unit_of_work``, ``ApiContext.writing``...).
Writing = Callable[[], AbstractContextManager[UnitOfWork]]


@dataclass(frozen=True)
class Change:
    """One audited change: its action (``run.pause``...), target (a run id, key, ref; may be
    None) and details (a small JSON document, never a secret). ``details`` is read when the
    entry is written, so a dict the block fills in (the version published...) is recorded
    as it is then."""

    action: str
    target: str | None
    details: Mapping[str, Any] | None = None


def database_principal(identity: Mapping[str, Any] | None = None) -> Principal:
    """Who a change on the database is made by: ``cli:<login>`` when ``identity`` says it
    comes from the ``treadle`` command (``"via": "cli"``), else ``client:<login>``; the
    login is the identity's, or this process's. An admin of the default workspace."""
    identity = identity or {}
    via = "cli" if identity.get("via") == "cli" else "client"
    login = str(identity.get("login") or os_login())
    return Principal(name=f"{via}:{login}", role=Role.ADMIN, workspace=DEFAULT_WORKSPACE)


def _entry(
    principal: Principal,
    change: Change,
    at: datetime,
    outcome: AuditOutcome,
    error: str | None = None,
) -> AuditEntry:
    details = dict(change.details) if change.details else {}
    if error is not None:
        details["error"] = error
    return AuditEntry(
        at=at,
        actor=principal.actor,
        workspace=principal.workspace,
        action=change.action,
        target=change.target,
        outcome=outcome,
        details=details or None,
    )


@contextmanager
def audited(
    writing: Writing,
    principal: Principal,
    *changes: Change,
    clock: Callable[[], datetime],
) -> Iterator[UnitOfWork]:
    """A transaction for ``principal`` making ``changes``, each recorded in the audit log
    with how it ended (see the module docstring)."""
    try:
        with writing() as uow:
            yield uow
            at = clock()
            for change in changes:
                uow.record_audit(_entry(principal, change, at, AuditOutcome.OK))
    except ServiceUnavailable:
        raise  # nothing can be recorded in a database that cannot be reached
    except TreadleError as exc:
        record_attempt(writing, principal, changes, exc, clock=clock)
        raise


def record_attempt(
    writing: Writing,
    principal: Principal,
    changes: Sequence[Change],
    error: TreadleError,
    *,
    clock: Callable[[], datetime],
) -> None:
    """Record, in a transaction of its own, that ``changes`` were tried and ended in
    ``error``: ``refused`` for a ConflictError or Forbidden, else ``failed``."""
    outcome = AuditOutcome.REFUSED if isinstance(error, ConflictError | Forbidden) else None
    with writing() as uow:
        at = clock()
        for change in changes:
            entry = _entry(principal, change, at, outcome or AuditOutcome.FAILED, str(error))
            uow.record_audit(entry)


@dataclass(frozen=True)
class Auditor:
    """Where and as whom changes are made and recorded: a way to open a transaction, the
    principal, and the clock stamping the entries."""

    writing: Writing
    principal: Principal
    clock: Callable[[], datetime]

    def audited(self, *changes: Change) -> AbstractContextManager[UnitOfWork]:
        """:func:`audited`: a transaction making ``changes``, recorded with how it ended."""
        return audited(self.writing, self.principal, *changes, clock=self.clock)

    def attempted(self, changes: Sequence[Change], error: TreadleError) -> None:
        """:func:`record_attempt`: ``changes`` were tried and ended in ``error``."""
        record_attempt(self.writing, self.principal, changes, error, clock=self.clock)
