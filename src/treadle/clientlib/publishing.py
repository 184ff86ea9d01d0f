"""Publishing workflow definitions from a client: check them all, then publish them all.

:meth:`treadle.Client.register_all` (and ``register``, ``start_spec``) publish definitions
without loading any packs, so what a definition may call comes from what the scheduler
registered (:func:`~treadle.clientlib.registry.registry_catalog`), the caller's catalog and
the definitions themselves. Every definition is validated first and nothing is published
if any has an error; then each is published in the caller's transaction, as a new version
only when its content changed. That logic is kept here, apart from the client, which only
opens the transaction and reports what happened.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from treadle.clientlib.registry import registry_catalog
from treadle.common.access import DEFAULT_WORKSPACE
from treadle.common.catalog import Catalog
from treadle.common.errors import DefinitionError
from treadle.common.graph import Graph
from treadle.common.source import Severity
from treadle.common.spec import WorkflowSpec
from treadle.scheduler.service.definitions import Definitions, owner_when_publishing
from treadle.scheduler.store import Store, UnitOfWork

__all__ = ["Registered", "publish_all", "validated_graphs"]


@dataclass(frozen=True)
class Registered:
    """One published definition: its ref, version number, and whether this call made it."""

    ref: str
    version: int
    new: bool


def owner_for_clients(uow: UnitOfWork, ref: str) -> str:
    """Who owns what the CLI and clients publish under ``ref``: they act in the default
    workspace, so a ref that workspace created through the API stays its own; any other
    is shared by every workspace."""
    return owner_when_publishing(uow, ref, DEFAULT_WORKSPACE)


def publish_all(
    store: Store,
    uow: UnitOfWork,
    specs: Sequence[WorkflowSpec],
    *,
    catalog: Catalog | None,
    author: str | None,
    clock: Callable[[], datetime],
    workspace: str | None = None,
) -> list[Registered]:
    """Validate ``specs`` and publish each in ``uow``; DefinitionError publishes none.

    They are checked against the actions registered in the database, then ``catalog`` (it
    wins on clashes), then the specs themselves. Unknown actions are allowed. Each
    version is stamped with ``clock()`` as it is published, and owned by ``workspace``
    (``''``: shared by every workspace); None (the CLI, clients) publishes as
    :func:`owner_for_clients` says.
    """
    known = registry_catalog(uow.registered_actions())
    known = known.merged(catalog or Catalog())
    known = known.merged(Catalog(workflows={s.ref: s for s in specs}))
    graphs = validated_graphs(specs, known)
    definitions = Definitions(store, known)
    registered: list[Registered] = []
    for spec, graph in zip(specs, graphs, strict=True):
        owner = owner_for_clients(uow, spec.ref) if workspace is None else workspace
        before = [v.version for v in uow.list_definition_versions(spec.ref, workspace=owner)]
        pinned = definitions.publish(
            spec, at=clock(), author=author, uow=uow, graph=graph, workspace=owner
        )
        new = pinned.version not in before
        registered.append(Registered(spec.ref, pinned.version, new))
    return registered


def validated_graphs(specs: Sequence[WorkflowSpec], catalog: Catalog) -> list[Graph | None]:
    """Raise DefinitionError with every error of ``specs``; else their compiled graphs."""
    from treadle.common.validate import checked_workflow

    checked = [checked_workflow(spec, catalog) for spec in specs]
    errors = [
        issue for issues, _ in checked for issue in issues if issue.severity is Severity.ERROR
    ]
    if errors:
        raise DefinitionError(errors)
    return [graph for _, graph in checked]
