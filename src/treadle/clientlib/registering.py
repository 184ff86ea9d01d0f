"""Publishing workflow definitions from :class:`treadle.Client`: ``register`` and
``register_all``, audited, all of them or none.

Kept apart so the client module stays one responsibility per part; the client provides
its store, auditor, identity and ``_session`` (connection failures as ServiceUnavailable).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any

from treadle.clientlib.audit import Auditor, Change
from treadle.clientlib.publishing import Registered, publish_all
from treadle.common.catalog import Catalog
from treadle.common.spec import WorkflowSpec
from treadle.scheduler.store import Store, UnitOfWork
from treadle.scheduler.store.base import utc_now

__all__ = ["DefinitionRegistration"]

log = logging.getLogger("treadle.client")


class DefinitionRegistration:
    """``register`` and ``register_all`` on top of the client's store and auditor."""

    _store: Store
    _auditor: Auditor
    _identity: dict[str, Any]

    def _session(self) -> AbstractContextManager[None]:
        raise NotImplementedError

    def register(self, spec: WorkflowSpec, *, catalog: Catalog | None = None) -> int:
        """Publish ``spec`` as the next version of its ref unless unchanged; returns the version.

        See :meth:`register_all` for ``catalog`` and validation.
        """
        [registered] = self.register_all([spec], catalog=catalog)
        return registered.version

    def register_all(
        self, specs: Sequence[WorkflowSpec], *, catalog: Catalog | None = None
    ) -> list[Registered]:
        """Publish several definitions in one transaction: all of them, or none.

        Each is validated against the actions the scheduler registered, ``catalog`` (e.g.
        loaded packs; it wins on clashes) and the specs themselves; any error raises
        DefinitionError with every problem and publishes nothing. Unknown actions are
        allowed (a worker may know them), and run as Python actions.
        """
        noted: list[dict[str, Any]] = [{} for _ in specs]  # filled once published
        changes = [Change("workflow.publish", s.ref, d) for s, d in zip(specs, noted, strict=True)]
        with self._session(), self._auditor.audited(*changes) as uow:
            registered = self._publish(uow, specs, catalog)
            for details, item in zip(noted, registered, strict=True):
                details.update(version=item.version, new=item.new)
        for item in registered:
            log.info("%s v%d %s", item.ref, item.version, "published" if item.new else "unchanged")
        return registered

    def _publish(
        self, uow: UnitOfWork, specs: Sequence[WorkflowSpec], catalog: Catalog | None
    ) -> list[Registered]:
        author = str(self._identity.get("login") or "") or None
        return publish_all(self._store, uow, specs, catalog=catalog, author=author, clock=utc_now)
