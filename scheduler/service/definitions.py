"""Workflow definitions as versions: publish on change, pin runs, compile graphs once.

A definition is stored as its canonical spec (JSON, without source locations) together with
the route of every action it calls (runner kind and queue), resolved when it is published.
The content hash covers both, so editing comments or whitespace does not make a new version,
while changing the workflow (or what one of its actions is, or where it runs) does. A run is
pinned to the version it started on; its graph is rebuilt from that stored version only,
never from the packs as they are now.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from treadle.common.catalog import Catalog
from treadle.common.graph import INQUIRY_ACTIONS, Graph, compile_graph
from treadle.common.source import SourceMap
from treadle.common.spec import RunnerType, TaskSpec, WorkflowSpec
from treadle.scheduler.service.deletions import WorkflowDeleted, deleted_message, is_tombstone
from treadle.scheduler.store import DefinitionVersion, Store, UnitOfWork

SPEC_DOCUMENT = "spec.json"
ROUTES_DOCUMENT = "action_routes.json"


@dataclass(frozen=True)
class ActionRoute:
    """How a definition's action is run: its runner kind and the queue its attempts go to."""

    runner: RunnerType
    queue: str | None = None

    def as_json(self) -> dict[str, str | None]:
        return {"runner": self.runner.value, "queue": self.queue}


@dataclass(frozen=True)
class PinnedDefinition:
    """One published version of a workflow and its compiled graph."""

    ref: str
    version: int
    spec: WorkflowSpec
    routes: Mapping[str, ActionRoute]
    graph: Graph

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
        self._pinned: dict[tuple[str, int], PinnedDefinition] = {}
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
            routes[ref] = ActionRoute(kind, action.queue if action is not None else None)
        return routes

    def publish(
        self,
        spec: WorkflowSpec,
        *,
        at: datetime,
        author: str | None = None,
        uow: UnitOfWork | None = None,
        graph: Graph | None = None,
    ) -> PinnedDefinition:
        """Register ``spec`` (in ``uow`` if given); unchanged content keeps its version.

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
                version = own.register_definition(
                    spec.ref, documents, dialect=spec.dialect, author=author, at=at
                )
                return self._pin(
                    own, PinnedDefinition(spec.ref, version.version, spec, routes, graph)
                )
        version = uow.register_definition(
            spec.ref, documents, dialect=spec.dialect, author=author, at=at
        )
        return self._pin(uow, PinnedDefinition(spec.ref, version.version, spec, routes, graph))

    def _pin(self, uow: UnitOfWork, pinned: PinnedDefinition) -> PinnedDefinition:
        """Remember ``pinned`` once ``uow`` commits (a rolled-back version number may be
        reused by another process for other content)."""
        key = (pinned.ref, pinned.version)

        def remember() -> None:
            self._pinned.setdefault(key, pinned)

        uow.after_commit(remember)
        return self._pinned.get(key, pinned)

    def publish_ref(self, ref: str, *, at: datetime, uow: UnitOfWork) -> PinnedDefinition:
        """Publish the catalog's current definition of ``ref`` (for child runs)."""
        return self.publish(self._catalog.workflow(ref), at=at, uow=uow)

    def pinned(
        self, ref: str, version: int | None, uow: UnitOfWork | None = None
    ) -> PinnedDefinition:
        """The stored version a run is pinned to (the latest when ``version`` is None).

        WorkflowDeleted (a NotFound) when that version is a deletion's tombstone.
        """
        if version is not None and (ref, version) in self._pinned:
            return self._pinned[(ref, version)]
        if uow is None:
            with self._store.unit_of_work() as own:
                return self._pin(own, self._from_stored(ref, own.get_definition(ref, version)))
        return self._pin(uow, self._from_stored(ref, uow.get_definition(ref, version)))

    def _from_stored(self, ref: str, stored: DefinitionVersion) -> PinnedDefinition:
        if is_tombstone(stored):  # the workflow was deleted: the tombstone has no definition
            raise WorkflowDeleted(deleted_message(stored))
        content = (stored.documents[SPEC_DOCUMENT], stored.documents.get(ROUTES_DOCUMENT, "{}"))
        raw: Mapping[str, Any] = json.loads(content[1])
        routes = {
            action: ActionRoute(RunnerType(route["runner"]), route.get("queue"))
            for action, route in raw.items()
        }
        spec = _spec_from_documents(ref, stored.version, stored.documents)
        graph = self._compiled.get(content)
        if graph is None:
            graph = _compile(spec, routes)
            self._compiled[content] = graph
        return PinnedDefinition(ref, stored.version, spec, routes, graph)


def _compile(spec: WorkflowSpec, routes: Mapping[str, ActionRoute]) -> Graph:
    """The graph of ``spec`` with each action's kind and queue as pinned in ``routes``."""

    def kind_of(ref: str) -> RunnerType | None:
        route = routes.get(ref)
        return None if route is None else route.runner

    def queue_of(ref: str) -> str | None:
        route = routes.get(ref)
        return None if route is None else route.queue

    return compile_graph(spec, kind_of, queue_of)


def _spec_from_documents(ref: str, version: int, documents: Mapping[str, str]) -> WorkflowSpec:
    data = json.loads(documents[SPEC_DOCUMENT])
    data["source"] = SourceMap(f"{ref}@v{version}")
    return WorkflowSpec.model_validate(data)
