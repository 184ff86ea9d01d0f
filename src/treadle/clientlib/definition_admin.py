"""Changing workflows from outside the packs: read, check, publish, delete and start them.

The HTTP API publishes definitions sent to it, deletes workflows and starts runs; the
rules live here, apart from HTTP, so any client applies the same ones:

* a definition is read with the loader ``treadle validate`` uses (YAML, or the same
  definition as JSON, every problem located by line and column) and checked like
  ``treadle workflows register`` checks it: against the actions the scheduler registered,
  the server's packs and the definition itself (:func:`definition_issues`); one error
  publishes nothing;
* a workflow one of the packs defines belongs to its pack file: replacing or deleting it
  here is refused (:class:`PackOwned`, a ConflictError naming the file). Change the file,
  then reload the packs;
* a workflow created through the API belongs to the workspace of the token that created
  it; a workspace cannot replace or delete a workflow every workspace shares (published
  from the CLI or a client: :class:`SharedWorkflow`, a ConflictError);
* deleting publishes a tombstone (:mod:`treadle.scheduler.service.deletions`): runs in
  flight go on, no new run starts;
* starting a run pins the version first and creates the run in the caller's transaction.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from treadle.clientlib.publishing import Registered, publish_all
from treadle.clientlib.registry import registry_catalog
from treadle.common.access import DEFAULT_WORKSPACE, SHARED_WORKSPACE
from treadle.common.catalog import Catalog
from treadle.common.errors import ConflictError, DefinitionError, NotFound
from treadle.common.loader import PackLoader, parse_yaml, read_workflow_text
from treadle.common.loader.attune_workflow import read_workflow_document
from treadle.common.loader.yaml_source import Document
from treadle.common.source import Issue, Severity
from treadle.common.spec import WorkflowSpec
from treadle.scheduler.service.definitions import Definitions, PinnedDefinition
from treadle.scheduler.service.deletions import delete_definition
from treadle.scheduler.service.starting import RunOptions, RunStarter, StartedRun
from treadle.scheduler.store import DefinitionVersion, Store, UnitOfWork
from treadle.scheduler.store.definition_listing import pack_workflows

__all__ = [
    "BODY_FILE",
    "PackOwned",
    "PackSource",
    "SharedWorkflow",
    "check_not_from_pack",
    "definition_error",
    "definition_issues",
    "delete_workflow",
    "errors_only",
    "pack_source",
    "publish_definition",
    "read_json_definition",
    "read_yaml_definition",
    "start_workflow",
]

#: The file name a definition sent in a request body is reported under.
BODY_FILE = "<body>"


def read_yaml_definition(
    text: str, *, file: str = BODY_FILE, default_ref: str | None = None
) -> tuple[WorkflowSpec | None, list[Issue]]:
    """The workflow in YAML ``text`` and every problem the loader found (never raises)."""
    return read_workflow_text(text, file, default_ref=default_ref)


def read_json_definition(
    text: str, data: Any, *, file: str = BODY_FILE, default_ref: str | None = None
) -> tuple[WorkflowSpec | None, list[Issue]]:
    """The workflow in JSON ``text`` (already parsed as ``data``: JSON's own rules), with
    the lines and columns of ``text`` (read as YAML, which JSON is)."""
    located = parse_yaml(text, file)
    locations = dict(located.locations) if located.ok else {}
    return read_workflow_document(Document(file, data, locations), default_ref=default_ref)


def errors_only(issues: list[Issue]) -> list[Issue]:
    return [issue for issue in issues if issue.severity is Severity.ERROR]


def definition_issues(
    uow: UnitOfWork, spec: WorkflowSpec | None, read: list[Issue], catalog: Catalog
) -> list[Issue]:
    """Every problem of a read definition: the loader's (``read``), then the validator's
    against the registered actions, ``catalog`` (the server's packs) and the definition
    itself, as publishing checks it. Sorted by place, each once."""
    issues = list(read)
    if spec is not None:  # as `treadle validate` does: every problem at once
        from treadle.common.validate import validate_workflow

        known = registry_catalog(uow.registered_actions()).merged(catalog)
        known = known.merged(Catalog(workflows={spec.ref: spec}))
        issues.extend(validate_workflow(spec, known))
    unique = dict.fromkeys(issues)
    return sorted(unique, key=lambda i: (i.loc.file, i.loc.line, i.loc.col, i.message))


@dataclass(frozen=True)
class PackSource:
    """The pack a workflow comes from: its name, its folder and, when this server has the
    pack, the file that defines the workflow."""

    pack: str
    path: str | None
    file: str | None

    def describe(self) -> str:
        if self.file is not None:
            return f"{self.file} (pack '{self.pack}')"
        where = f" at {self.path}" if self.path else ""
        return f"pack '{self.pack}'{where}, as the scheduler registered it"


class PackOwned(ConflictError):
    """The workflow comes from a pack file: change the file, not the published version."""

    def __init__(self, ref: str, source: PackSource, doing: str) -> None:
        self.source = source
        super().__init__(
            f"workflow '{ref}' comes from {source.describe()}; {doing} it here would be "
            "undone by the next pack reload or scheduler start: change the pack file "
            "instead, then reload the packs (POST /api/v1/packs/reload)"
        )


def pack_source(uow: UnitOfWork, ref: str, packs: PackLoader | None) -> PackSource | None:
    """Where ``ref`` comes from if a pack defines it: a file of ``packs`` (the server's
    packs), else a pack registered in the database; None for a workflow of no pack."""
    if packs is not None:
        file = packs.origins.get(ref)
        if file is None:  # a workflow file the loader read but left out for its errors
            file = next((d.source.file for d in packs.drafts if d.ref == ref), None)
        if file is not None:
            file = os.path.abspath(file)
            for pack in packs.catalog.packs.values():
                if pack.path is not None and file.startswith(pack.path + os.sep):
                    return PackSource(pack.ref, pack.path, file)
            return PackSource(ref.split(".", 1)[0], None, file)
    registered = pack_workflows(uow.connection, [ref]).get(ref)
    if registered is not None:
        return PackSource(registered[0], registered[1], None)
    return None


class SharedWorkflow(ConflictError):
    """The workflow is shared by every workspace: one workspace may not change it."""

    def __init__(self, ref: str, workspace: str, doing: str) -> None:
        super().__init__(
            f"workflow '{ref}' is shared by every workspace (it was published from the "
            f"server, not through the API in workspace '{workspace}'); {doing} it here is "
            "not allowed: publish your workflow under another ref"
        )


def check_not_from_pack(
    uow: UnitOfWork,
    ref: str,
    packs: PackLoader | None,
    doing: str,
    workspace: str | None = None,
) -> None:
    """PackOwned (409) when a pack defines ``ref`` (``doing``: "replacing", "deleting");
    with a ``workspace``, SharedWorkflow (409) when that workspace sees ``ref`` as a
    shared workflow rather than its own."""
    source = pack_source(uow, ref, packs)
    if source is not None:
        raise PackOwned(ref, source, doing)
    if workspace is not None and uow.definition_owner(ref, workspace) == SHARED_WORKSPACE:
        raise SharedWorkflow(ref, workspace, doing)


def publish_definition(
    store: Store,
    uow: UnitOfWork,
    spec: WorkflowSpec,
    *,
    packs: PackLoader,
    author: str | None,
    clock: Callable[[], datetime],
    workspace: str = DEFAULT_WORKSPACE,
) -> Registered:
    """Publish ``spec`` in ``uow`` as a workflow of ``workspace`` unless a pack defines its
    ref (PackOwned) or it is shared (SharedWorkflow); a new version only when its content
    changed. DefinitionError (nothing stored) for an error."""
    check_not_from_pack(uow, spec.ref, packs, "replacing", workspace)
    [registered] = publish_all(
        store,
        uow,
        [spec],
        catalog=packs.catalog,
        author=author,
        clock=clock,
        workspace=workspace,
    )
    return registered


def delete_workflow(
    uow: UnitOfWork,
    ref: str,
    *,
    packs: PackLoader,
    author: str | None,
    at: datetime,
    reason: str | None = None,
    workspace: str = DEFAULT_WORKSPACE,
) -> DefinitionVersion:
    """Delete ``workspace``'s ``ref`` (its tombstone, returned) unless a pack defines it
    (PackOwned) or it is shared (SharedWorkflow). NotFound when it has no version;
    WorkflowDeleted when it is deleted already."""
    check_not_from_pack(uow, ref, packs, "deleting", workspace)
    return delete_definition(uow, ref, author=author, at=at, reason=reason, workspace=workspace)


def start_workflow(
    uow: UnitOfWork,
    starter: RunStarter,
    definitions: Definitions,
    ref: str,
    *,
    version: int | None,
    parameters: Mapping[str, Any],
    options: RunOptions,
) -> tuple[PinnedDefinition, StartedRun]:
    """Start a run of ``ref`` (its latest version, or ``version``) in ``uow``, exactly as
    :meth:`treadle.Client.start` does: NotFound naming the published versions, or
    WorkflowDeleted; ParameterError naming each bad parameter; with an idempotency key
    already used, that run (``created`` False) and nothing new."""
    try:
        pinned = definitions.pinned(ref, version, uow, workspace=options.workspace)
    except NotFound as exc:
        if type(exc) is not NotFound:  # WorkflowDeleted says it best
            raise
        owner = uow.definition_owner(ref, options.workspace)
        stored = [] if owner is None else uow.list_definition_versions(ref, workspace=owner)
        versions = [v.version for v in stored]
        if not versions:
            raise NotFound(f"workflow '{ref}' has no published version") from None
        listed = ", ".join(str(v) for v in versions)
        raise NotFound(
            f"workflow '{ref}' has no version {version} (published versions: {listed})"
        ) from None
    return pinned, starter.start_pinned_in(uow, pinned, parameters, options)


def definition_error(issues: list[Issue]) -> DefinitionError:
    """The error refusing a definition with these issues (its errors only)."""
    return DefinitionError(errors_only(issues))
