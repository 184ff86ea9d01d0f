"""Workflow definitions as versions: publish on change, pin runs, compile graphs once.

A definition is stored as its canonical spec (JSON, without source locations) together with
the route of every action it calls (runner kind and queue), resolved when it is published.
The content hash covers both, so editing comments or whitespace does not make a new version,
while changing the workflow (or what one of its actions is, or where it runs) does. A run is
pinned to the version it started on; its graph is rebuilt from that stored version only,
never from the packs as they are now.

A definition is shared by every workspace (published from pack paths, the CLI, clients)
or owned by the workspace whose token created it through the HTTP API. A run finds its
definition as its workspace sees the ref: its own when it has one, else the shared one
(the API refuses to create, in a workspace, a ref that is shared, so this never changes
under a run).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from treadle.common.access import SHARED_WORKSPACE
from treadle.common.catalog import Catalog
from treadle.common.errors import NotFound
from treadle.common.graph import INQUIRY_ACTIONS, Graph, compile_graph
from treadle.common.source import SourceMap
from treadle.common.spec import RateLimitSpec, RunnerType, TaskSpec, WorkflowSpec
from treadle.scheduler.service.deletions import WorkflowDeleted, deleted_message, is_tombstone
from treadle.scheduler.store import DefinitionVersion, Store, UnitOfWork

SPEC_DOCUMENT = "spec.json"
ROUTES_DOCUMENT = "action_routes.json"


@dataclass(frozen=True)
class ActionRoute:
    """How a definition's action is run: its runner kind and the queue its attempts go to."""

    runner: RunnerType
    queue: str | None = None
    #: The action's own rate limit, pinned with the version (kept out of the JSON when
    #: unset, so routes stored before it hash the same).
    rate_limit: RateLimitSpec | None = None
    #: The action declares ``side_effects: true`` (in the JSON only when it does).
    side_effects: bool = False

    def as_json(self) -> dict[str, Any]:
        route: dict[str, Any] = {"runner": self.runner.value, "queue": self.queue}
        if self.rate_limit is not None:
            route["rate_limit"] = self.rate_limit.model_dump(mode="json")
        if self.side_effects:
            route["side_effects"] = True
        return route


@dataclass(frozen=True)
class PinnedDefinition:
    """One published version of a workflow and its compiled graph; ``workspace`` owns it
    (``''``: shared by every workspace)."""

    ref: str
    version: int
    spec: WorkflowSpec
    routes: Mapping[str, ActionRoute]
    graph: Graph
    workspace: str = SHARED_WORKSPACE

    @property
    def kinds(self) -> dict[str, RunnerType]:
        return {ref: route.runner for ref, route in self.routes.items()}


def canonical_spec(spec: WorkflowSpec) -> str:
    """The spec as stable JSON: what is hashed and stored (source locations excluded)."""
    data = spec.model_dump(mode="json", exclude={"source"})
    return json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def action_refs(tasks: Iterable[TaskSpec]) -> Iterator[str]:
    for task in tasks:
        if task.action:
            yield task.action
        if task.compensate is not None:
            yield task.compensate.action
        yield from action_refs(task.tasks)


class Definitions:
    """Publishes workflow specs to the store and hands out pinned, compiled versions."""

    def __init__(self, store: Store, catalog: Catalog) -> None:
        self._store = store
        self._catalog = catalog
        # By (the workspace looking, ref, version): what that workspace sees never changes.
        self._pinned: dict[tuple[str, str, int], PinnedDefinition] = {}
        # Graphs by stored content, so publishing an unchanged spec compiles it only once.
        self._compiled: dict[tuple[str, str], Graph] = {}

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    def pack_config(self, pack: str, uow: UnitOfWork) -> dict[str, object]:
        """A pack's configuration: from the loaded packs, else as the scheduler registered it.

        Clients start runs without loading packs; they read what the scheduler registered.
        """
        if pack in self._catalog.packs:
            return self._catalog.pack_config(pack)
        return uow.pack_config(pack)

    def routes_for(self, spec: WorkflowSpec) -> dict[str, ActionRoute]:
        """The runner kind and queue of every action ``spec`` calls, as the packs say now."""
        routes: dict[str, ActionRoute] = {}
        for ref in sorted(set(action_refs(spec.tasks))):
            if ref in INQUIRY_ACTIONS:
                routes[ref] = ActionRoute(RunnerType.INQUIRY)
                continue
            kind = self._catalog.kind_of(ref)
            if kind is None:
                continue
            action = self._catalog.actions.get(ref)
            if action is None:
                routes[ref] = ActionRoute(kind)
            else:
                routes[ref] = ActionRoute(
                    kind, action.queue, action.rate_limit, action.side_effects
                )
        return routes

    def publish(
        self,
        spec: WorkflowSpec,
        *,
        at: datetime,
        author: str | None = None,
        uow: UnitOfWork | None = None,
        graph: Graph | None = None,
        workspace: str = SHARED_WORKSPACE,
    ) -> PinnedDefinition:
        """Register ``spec`` (in ``uow`` if given, owned by ``workspace``); unchanged
        content keeps its version.

        The graph is compiled first: a definition that cannot run (``DefinitionError``) is
        never stored as a version. ``graph`` is ``spec`` already compiled with this
        catalog's routes (by validation), used instead of compiling it again.
        """
        routes = self.routes_for(spec)
        documents = {
            SPEC_DOCUMENT: canonical_spec(spec),
            ROUTES_DOCUMENT: json.dumps(
                {ref: route.as_json() for ref, route in routes.items()}, sort_keys=True
            ),
        }
        content = (documents[SPEC_DOCUMENT], documents[ROUTES_DOCUMENT])
        compiled = self._compiled.get(content) or graph or _compile(spec, routes)
        self._compiled[content] = graph = compiled
        if uow is None:
            with self._store.unit_of_work() as own:
                return self._publish_in(
                    own, spec, documents, routes, graph, workspace=workspace, author=author, at=at
                )
        return self._publish_in(
            uow, spec, documents, routes, graph, workspace=workspace, author=author, at=at
        )

    def _publish_in(
        self,
        uow: UnitOfWork,
        spec: WorkflowSpec,
        documents: Mapping[str, str],
        routes: Mapping[str, ActionRoute],
        graph: Graph,
        *,
        workspace: str,
        author: str | None,
        at: datetime,
    ) -> PinnedDefinition:
        version = uow.register_definition(
            spec.ref, documents, dialect=spec.dialect, author=author, at=at, workspace=workspace
        )
        pinned = PinnedDefinition(spec.ref, version.version, spec, routes, graph, workspace)
        if version.created and self._store.lifecycle_events:
            # Imported here: the module renders with the renderings, which import this one.
            from treadle.scheduler.service.lifecycle_events.definition_events import (
                record_new_version,
            )

            record_new_version(uow, pinned, version)
        return self._pin(uow, pinned, workspace)

    def _pin(self, uow: UnitOfWork, pinned: PinnedDefinition, looking: str) -> PinnedDefinition:
        """Remember ``pinned`` as what ``looking`` sees once ``uow`` commits (a rolled-back
        version number may be reused by another process for other content)."""
        key = (looking, pinned.ref, pinned.version)

        def remember() -> None:
            self._pinned.setdefault(key, pinned)

        uow.after_commit(remember)
        return self._pinned.get(key, pinned)

    def publish_ref(self, ref: str, *, at: datetime, uow: UnitOfWork) -> PinnedDefinition:
        """Publish the catalog's current definition of ``ref`` (for child runs)."""
        return self.publish(self._catalog.workflow(ref), at=at, uow=uow)

    def pinned(
        self,
        ref: str,
        version: int | None,
        uow: UnitOfWork | None = None,
        *,
        workspace: str = SHARED_WORKSPACE,
    ) -> PinnedDefinition:
        """The stored version a run is pinned to (the latest when ``version`` is None), as
        ``workspace`` sees ``ref`` (its own definition, else the shared one).

        WorkflowDeleted (a NotFound) when that version is a deletion's tombstone.
        """
        if version is not None and (workspace, ref, version) in self._pinned:
            return self._pinned[(workspace, ref, version)]
        if uow is None:
            with self._store.unit_of_work() as own:
                return self._pinned_in(own, ref, version, workspace)
        return self._pinned_in(uow, ref, version, workspace)

    def _pinned_in(
        self, uow: UnitOfWork, ref: str, version: int | None, workspace: str
    ) -> PinnedDefinition:
        owner = SHARED_WORKSPACE
        if workspace != SHARED_WORKSPACE:
            owner = uow.definition_owner(ref, workspace) or SHARED_WORKSPACE
        stored = uow.get_definition(ref, version, workspace=owner)
        return self._pin(uow, self._from_stored(ref, stored), workspace)

    def _from_stored(self, ref: str, stored: DefinitionVersion) -> PinnedDefinition:
        if is_tombstone(stored):  # the workflow was deleted: the tombstone has no definition
            raise WorkflowDeleted(deleted_message(stored))
        content = (stored.documents[SPEC_DOCUMENT], stored.documents.get(ROUTES_DOCUMENT, "{}"))
        routes = routes_from_json(json.loads(content[1]))
        spec = _spec_from_documents(ref, stored.version, stored.documents)
        graph = self._compiled.get(content)
        if graph is None:
            graph = _compile(spec, routes)
            self._compiled[content] = graph
        return PinnedDefinition(ref, stored.version, spec, routes, graph, stored.workspace)


def routes_from_json(raw: Mapping[str, Any]) -> dict[str, ActionRoute]:
    """Action routes as ``ROUTES_DOCUMENT`` stores them (``ActionRoute.as_json`` per ref)."""
    return {
        action: ActionRoute(
            RunnerType(route["runner"]),
            route.get("queue"),
            _pinned_rate(route),
            route.get("side_effects") is True,
        )
        for action, route in raw.items()
    }


def pinned_from_documents(
    ref: str, version: int, spec_json: Mapping[str, Any], routes_json: Mapping[str, Any]
) -> PinnedDefinition:
    """A version rebuilt from its stored documents (parsed) and compiled, without a store:
    golden records carry their definition this way. Raises pydantic's ``ValidationError``
    or ``DefinitionError`` when they do not make a definition."""
    routes = routes_from_json(routes_json)
    documents = {SPEC_DOCUMENT: json.dumps(dict(spec_json))}
    spec = _spec_from_documents(ref, version, documents)
    return PinnedDefinition(ref, version, spec, routes, _compile(spec, routes))


def owner_when_publishing(uow: UnitOfWork, ref: str, workspace: str) -> str:
    """Who owns a version of ``ref`` published by someone acting in ``workspace`` without
    the API (the CLI, clients, ``treadle run``): the workspace when it owns ``ref``
    already (it created it through the API), so its runs keep seeing their own; else
    nobody, the version is shared."""
    if uow.definition_owner(ref, workspace) == workspace:
        return workspace
    return SHARED_WORKSPACE


def _pinned_rate(route: Mapping[str, Any]) -> RateLimitSpec | None:
    limit = route.get("rate_limit")
    return None if limit is None else RateLimitSpec.model_validate(limit)


def _compile(spec: WorkflowSpec, routes: Mapping[str, ActionRoute]) -> Graph:
    """The graph of ``spec`` with each action's kind and queue as pinned in ``routes``."""

    def kind_of(ref: str) -> RunnerType | None:
        route = routes.get(ref)
        return None if route is None else route.runner

    def queue_of(ref: str) -> str | None:
        route = routes.get(ref)
        return None if route is None else route.queue

    def rate_of(ref: str) -> RateLimitSpec | None:
        route = routes.get(ref)
        return None if route is None else route.rate_limit

    def effects_of(ref: str) -> bool:
        route = routes.get(ref)
        return route is not None and route.side_effects

    return compile_graph(spec, kind_of, queue_of, rate_of, effects_of)


def stored_edges_graph(uow: UnitOfWork, ref: str, version: int, workspace: str) -> Graph | None:
    """The graph of a run's pinned version as ``workspace`` sees it (its tasks and edges;
    no action routes), for reading a run; None when the version is gone or a tombstone."""
    owner = uow.definition_owner(ref, workspace) or SHARED_WORKSPACE
    try:
        stored = uow.get_definition(ref, version, workspace=owner)
    except NotFound:
        return None
    if is_tombstone(stored):
        return None
    return compile_graph(_spec_from_documents(ref, stored.version, stored.documents))


def _spec_from_documents(ref: str, version: int, documents: Mapping[str, str]) -> WorkflowSpec:
    data = json.loads(documents[SPEC_DOCUMENT])
    data["source"] = SourceMap(f"{ref}@v{version}")
    return WorkflowSpec.model_validate(data)
