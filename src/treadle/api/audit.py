"""Recording what API callers change in the audit log, the same way for every router.

:func:`audited` is :func:`treadle.clientlib.audit.audited` (the one seam the API,
:class:`treadle.Client` and the ``treadle`` commands share) on the app's transactions and
clock, for the request's principal: the change and its entry commit together; a change
that raises is recorded in a transaction of its own as ``refused`` (a ConflictError, such
as a control the run's status does not allow, or Forbidden) or ``failed`` (any other
Treadle error: an unknown run...), then the error goes on to the error handlers.
Unexpected exceptions (bugs) are not recorded.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from treadle.api.context import ApiContext
from treadle.clientlib.audit import Auditor, Change
from treadle.common.access import Principal
from treadle.scheduler.store import UnitOfWork

__all__ = ["audited", "auditor"]


def auditor(context: ApiContext, principal: Principal) -> Auditor:
    """Changes made for ``principal`` in the app's transactions, stamped by its clock."""
    return Auditor(context.writing, principal, context.clock)


@contextmanager
def audited(
    context: ApiContext,
    principal: Principal,
    action: str,
    target: str | None,
    details: Mapping[str, Any] | None = None,
) -> Iterator[UnitOfWork]:
    """A transaction for ``principal`` doing ``action`` (``run.pause``...) to ``target``,
    recorded in the audit log with how it ended (see the module docstring). ``details`` is
    read when the entry is written: what the block adds to a dict passed here goes in it."""
    with auditor(context, principal).audited(Change(action, target, details)) as uow:
        yield uow
