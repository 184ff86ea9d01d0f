"""Packs as the HTTP API shows and reloads them: the registry, and reloading it from disk.

A pack's code reaches the workers through their pack paths (or their images), never
through the API; what the database holds is the *registry* of what the packs provide
(each pack's version and folder, each action's runner and queue, each workflow) and the
published versions of their workflows. The scheduler registers its packs and publishes
their workflows when it starts. :func:`reload_packs` does the same from the API server's
own pack paths (the shipped packs, then ``TREADLE_PACK_PATHS``), without a restart:

* everything is loaded and validated first; any error refuses the reload
  (``DefinitionError`` with every problem) and changes nothing;
* then, in the caller's transaction, the registry is replaced pack by pack (the webhooks
  each pack declares too: a name already taken elsewhere is a warning, not registered),
  every workflow is published (a new version only where its content changed) and the
  packs' rules are stored (``rule_sync``: a one-shot already past is a warning);
* what changed is reported: packs added or updated, actions added, removed or changed,
  workflows with a new version, and registered packs the paths no longer hold (they stay
  registered, as with a scheduler restart).

Running schedulers keep the packs they loaded: child workflows are published from those
until they restart.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from treadle.clientlib.publishing import Registered, publish_all
from treadle.common.catalog import Catalog
from treadle.common.errors import DefinitionError, ParameterError
from treadle.common.loader import PackLoader
from treadle.common.settings import Settings
from treadle.common.source import Issue, Loc, Severity
from treadle.common.spec import RunnerType
from treadle.scheduler.service.rule_sync import sync_rules
from treadle.scheduler.store import Store, UnitOfWork
from treadle.scheduler.store.definition_listing import (
    decode_ref_cursor,
    encode_ref_cursor,
    registered_packs,
)

__all__ = [
    "MAX_PACK_PAGE",
    "PackInfo",
    "PackPage",
    "ReloadReport",
    "list_packs",
    "reload_packs",
    "server_pack_paths",
    "server_packs",
]

#: The most packs one page may hold.
MAX_PACK_PAGE = 1000
#: The action fields whose change counts as a changed action.
_ACTION_FIELDS = ("runner_type", "entry_point", "queue", "parameters")


def server_pack_paths(settings: Settings) -> list[str]:
    """Where this server's packs are: the packs shipped with Treadle, then
    ``settings.pack_paths`` (as ``treadle scheduler`` loads them)."""
    shipped = Path(__file__).parent.parent / "packs"  # as the CLI finds them: not resolved
    return [str(shipped), *settings.pack_paths]


def server_packs(settings: Settings) -> PackLoader:
    """The packs of :func:`server_pack_paths`, loaded now; problems are in
    ``catalog.issues``, never raised."""
    return PackLoader().load(server_pack_paths(settings))


@dataclass(frozen=True)
class PackInfo:
    """One registered pack: its version and folder, and what it provides."""

    name: str
    version: str | None
    path: str | None
    registered_at: datetime
    workflows: tuple[str, ...]
    actions: tuple[str, ...]


@dataclass(frozen=True)
class PackPage:
    """A page of packs by name; ``next_cursor`` pages on (None after the last)."""

    packs: tuple[PackInfo, ...]
    next_cursor: str | None


def list_packs(uow: UnitOfWork, *, limit: int = 100, cursor: str | None = None) -> PackPage:
    """A page of the registered packs, by name, each with its workflows and actions."""
    if not 1 <= limit <= MAX_PACK_PAGE:
        raise ParameterError(
            [f"a page holds 1 to {MAX_PACK_PAGE} packs, not {limit}"], subject="limit"
        )
    after = decode_ref_cursor(cursor) if cursor is not None else None
    rows = registered_packs(uow.connection, after=after, limit=limit + 1)
    page = rows[:limit]
    provided: dict[str, tuple[list[str], list[str]]] = {row["ref"]: ([], []) for row in page}
    for action in uow.registered_actions():  # by ref
        found = provided.get(str(action["pack_ref"]))
        if found is not None:
            is_workflow = action["runner_type"] == RunnerType.WORKFLOW.value
            found[0 if is_workflow else 1].append(str(action["ref"]))
    packs = tuple(
        PackInfo(
            name=row["ref"],
            version=row["version"],
            path=row["path"],
            registered_at=row["registered_at"],
            workflows=tuple(provided[row["ref"]][0]),
            actions=tuple(provided[row["ref"]][1]),
        )
        for row in page
    )
    next_cursor = encode_ref_cursor(page[-1]["ref"]) if len(rows) > limit else None
    return PackPage(packs, next_cursor)


@dataclass(frozen=True)
class ReloadReport:
    """What a reload changed (see the module docstring)."""

    paths: tuple[str, ...]
    packs_added: tuple[str, ...] = ()
    packs_updated: tuple[str, ...] = ()
    packs_unchanged: tuple[str, ...] = ()
    packs_not_found: tuple[str, ...] = ()
    actions_added: tuple[str, ...] = ()
    actions_removed: tuple[str, ...] = ()
    actions_changed: tuple[str, ...] = ()
    workflows: tuple[Registered, ...] = ()
    warnings: tuple[Issue, ...] = field(default_factory=tuple)

    @property
    def published(self) -> tuple[Registered, ...]:
        """The workflows this reload published a new version of."""
        return tuple(item for item in self.workflows if item.new)


def reload_packs(
    store: Store,
    uow: UnitOfWork,
    loader: PackLoader,
    *,
    paths: Sequence[str],
    author: str | None,
    clock: Callable[[], datetime],
) -> ReloadReport:
    """Register ``loader``'s packs and publish their workflows in ``uow``; report what
    changed. DefinitionError (nothing changed) when a pack or workflow has an error."""
    catalog = loader.catalog
    issues = [*catalog.issues, *_workflow_issues(loader)]
    errors = [issue for issue in issues if issue.severity is Severity.ERROR]
    if errors:
        raise DefinitionError(_unique(errors))
    packs_before = {row["ref"]: row for row in registered_packs(uow.connection)}
    actions_before = _actions_by_ref(uow.registered_actions())
    uow.register_catalog(catalog, clock())
    webhook_problems = uow.register_pack_webhooks(catalog.packs, clock())
    specs = [catalog.workflows[ref] for ref in sorted(catalog.workflows)]
    registered = publish_all(store, uow, specs, catalog=catalog, author=author, clock=clock)
    synced = sync_rules(uow, catalog.rules, set(catalog.packs), now=clock())
    rule_warnings = [
        Issue(p.rule.source.loc(p.path), f"rule {p.rule.ref}: {p.message}", Severity.WARNING)
        for p in synced.problems
    ]
    actions_after = _actions_by_ref(uow.registered_actions())
    loaded = set(catalog.packs)
    mine = {ref for ref, row in actions_after.items() if row["pack_ref"] in loaded}
    theirs_before = {ref for ref, row in actions_before.items() if row["pack_ref"] in loaded}
    added_packs = sorted(loaded - set(packs_before))
    updated_packs = sorted(
        ref
        for ref in loaded & set(packs_before)
        if (packs_before[ref]["version"], packs_before[ref]["path"])
        != (catalog.packs[ref].version, catalog.packs[ref].path)
    )
    return ReloadReport(
        paths=tuple(paths),
        packs_added=tuple(added_packs),
        packs_updated=tuple(updated_packs),
        packs_unchanged=tuple(sorted(loaded - set(added_packs) - set(updated_packs))),
        packs_not_found=tuple(sorted(set(packs_before) - loaded)),
        actions_added=tuple(sorted(mine - theirs_before)),
        actions_removed=tuple(sorted(theirs_before - mine)),
        actions_changed=tuple(
            sorted(
                ref
                for ref in mine & theirs_before
                if any(
                    actions_before[ref][name] != actions_after[ref][name] for name in _ACTION_FIELDS
                )
            )
        ),
        workflows=tuple(registered),
        warnings=tuple(
            _unique(
                [
                    *(issue for issue in issues if issue.severity is Severity.WARNING),
                    *(_webhook_warning(catalog, problem) for problem in webhook_problems),
                    *rule_warnings,
                ]
            )
        ),
    )


def _webhook_warning(catalog: Catalog, problem: tuple[str, str]) -> Issue:
    """A pack webhook left unregistered, as a warning about its pack's ``pack.yaml``."""
    folder = catalog.packs[problem[0]].path
    where = str(Path(folder) / "pack.yaml") if folder else "pack.yaml"
    return Issue(Loc(where), problem[1], Severity.WARNING)


def _workflow_issues(loader: PackLoader) -> list[Issue]:
    """Every issue of the workflows the packs hold, checked against the packs loaded (as
    ``treadle validate`` checks pack folders)."""
    from treadle.common.validate import validate_workflow

    return [issue for spec in loader.drafts for issue in validate_workflow(spec, loader.catalog)]


def _actions_by_ref(rows: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The registered actions by ref, workflows left out (reported as workflows)."""
    return {str(row["ref"]): row for row in rows if row["runner_type"] != RunnerType.WORKFLOW.value}


def _unique(issues: Iterable[Issue]) -> list[Issue]:
    return sorted(
        dict.fromkeys(issues), key=lambda i: (i.loc.file, i.loc.line, i.loc.col, i.message)
    )
