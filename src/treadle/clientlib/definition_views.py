"""Reading published workflows: list them, describe one, list and compare its versions.

What the HTTP API's workflow reads show, apart from HTTP. A *workflow* is a ref with a
published version whose latest version is not a deletion's tombstone; what it shows comes
from that latest version (or the version asked for). Versions and diffs read the stored
versions exactly as ``treadle workflows versions|diff`` do (:mod:`.versions`), deleted
workflows included, since runs may still be pinned to their versions.

A workflow's *tags* are the ``tags`` list in its ``metadata`` (for a workflows/v1 import,
its definition's ``tags``); the Attune top-level ``tags:`` field is accepted and not kept
by the loader, so it does not count.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from treadle.clientlib.versions import VersionInfo, definition_text, list_versions, unified_diff
from treadle.common.access import DEFAULT_WORKSPACE
from treadle.common.errors import ConflictError, NotFound, ParameterError
from treadle.common.spec import WorkflowSpec
from treadle.scheduler.service.definitions import SPEC_DOCUMENT
from treadle.scheduler.service.deletions import (
    DELETED_DIALECT,
    WorkflowDeleted,
    deleted_message,
    is_tombstone,
)
from treadle.scheduler.service.renderings.v1_definitions import workflow_tags
from treadle.scheduler.store import DefinitionVersion, UnitOfWork
from treadle.scheduler.store.definition_listing import (
    DefinitionHead,
    decode_ref_cursor,
    encode_ref_cursor,
    latest_definitions,
    pack_workflows,
)

__all__ = [
    "MAX_WORKFLOW_PAGE",
    "Diff",
    "WorkflowDetail",
    "WorkflowPage",
    "WorkflowSummary",
    "describe_workflow",
    "diff_versions",
    "list_workflows",
    "stored_spec",
    "workflow_tags",
]

#: The most workflows one page may hold.
MAX_WORKFLOW_PAGE = 1000


def stored_spec(version: DefinitionVersion) -> WorkflowSpec:
    """The definition a stored version holds (not a tombstone: it holds none)."""
    return WorkflowSpec.model_validate(json.loads(version.documents[SPEC_DOCUMENT]))


@dataclass(frozen=True)
class WorkflowSummary:
    """A published workflow as listings show it: its latest version and where it comes
    from (``pack``/``pack_path`` when a registered pack defines it)."""

    ref: str
    spec: WorkflowSpec
    version: int
    tags: tuple[str, ...]
    dialect: str
    author: str | None
    created_at: datetime
    updated_at: datetime
    pack: str | None
    pack_path: str | None


@dataclass(frozen=True)
class WorkflowPage:
    """A page of workflows by ref; ``next_cursor`` pages on (None after the last)."""

    workflows: tuple[WorkflowSummary, ...]
    next_cursor: str | None


def _summary(head: DefinitionHead, source: tuple[str, str | None] | None) -> WorkflowSummary:
    latest = head.latest
    spec = stored_spec(latest)
    return WorkflowSummary(
        ref=latest.ref,
        spec=spec,
        version=latest.version,
        tags=workflow_tags(spec),
        dialect=latest.dialect,
        author=latest.author,
        created_at=head.first_published_at,
        updated_at=latest.created_at,
        pack=source[0] if source else None,
        pack_path=source[1] if source else None,
    )


def list_workflows(
    uow: UnitOfWork,
    *,
    pack: str | None = None,
    tag: str | None = None,
    limit: int = 50,
    cursor: str | None = None,
    workspace: str = DEFAULT_WORKSPACE,
) -> WorkflowPage:
    """A page of the published workflows ``workspace`` sees (its own and the shared ones;
    deleted ones left out) by ref, of ``pack`` and with ``tag`` when given. Pages hold
    every matching workflow once: pass ``next_cursor`` back, with the same filters, for
    the next."""
    if not 1 <= limit <= MAX_WORKFLOW_PAGE:
        raise ParameterError(
            [f"a page holds 1 to {MAX_WORKFLOW_PAGE} workflows, not {limit}"], subject="limit"
        )
    after = decode_ref_cursor(cursor) if cursor is not None else None
    batch = max(limit + 1, 100)
    found: list[DefinitionHead] = []
    while len(found) <= limit:
        heads = latest_definitions(
            uow.connection, after=after, pack=pack, limit=batch, workspace=workspace
        )
        for head in heads:
            if is_tombstone(head.latest):
                continue
            if tag is not None and tag not in workflow_tags(stored_spec(head.latest)):
                continue
            found.append(head)
            if len(found) > limit:
                break
        if len(heads) < batch:
            break
        after = heads[-1].latest.ref
    page = found[:limit]
    sources = pack_workflows(uow.connection, [head.latest.ref for head in page])
    summaries = tuple(_summary(head, sources.get(head.latest.ref)) for head in page)
    next_cursor = encode_ref_cursor(page[-1].latest.ref) if len(found) > limit else None
    return WorkflowPage(summaries, next_cursor)


@dataclass(frozen=True)
class WorkflowDetail:
    """One workflow: a version's definition (as ``treadle workflows diff`` shows it, and
    the action routes pinned with it) and every version, oldest first."""

    summary: WorkflowSummary
    shown_version: int
    definition: dict[str, Any]
    action_routes: dict[str, Any]
    versions: tuple[VersionInfo, ...]


def describe_workflow(
    uow: UnitOfWork, ref: str, version: int | None = None, workspace: str = DEFAULT_WORKSPACE
) -> WorkflowDetail:
    """The workflow ``ref`` as ``workspace`` sees it, at ``version`` (default: its
    latest). NotFound for an unknown ref or version; WorkflowDeleted when the workflow is
    deleted."""
    versions = list_versions(uow, ref, workspace)  # NotFound: nothing published
    owner = versions[-1].workspace
    latest = versions[-1]
    if latest.dialect == DELETED_DIALECT:
        raise WorkflowDeleted(deleted_message(_as_version(latest)))
    wanted = latest.version if version is None else version
    known = {v.version: v for v in versions}
    if wanted not in known:
        listed = ", ".join(str(v) for v in known)
        raise NotFound(f"workflow '{ref}' has no version {wanted} (published versions: {listed})")
    if known[wanted].dialect == DELETED_DIALECT:
        raise NotFound(f"version {wanted} of workflow '{ref}' is a deletion, not a definition")
    stored = uow.get_definition(ref, wanted, workspace=owner)
    head = (
        stored
        if wanted == latest.version
        else uow.get_definition(ref, latest.version, workspace=owner)
    )
    source = pack_workflows(uow.connection, [ref]).get(ref)
    summary = _summary(DefinitionHead(head, versions[0].created_at), source)
    shown = json.loads(definition_text(stored.documents, as_json=True))
    return WorkflowDetail(
        summary=summary,
        shown_version=wanted,
        definition=shown["definition"],
        action_routes=shown["action_routes"],
        versions=tuple(versions),
    )


@dataclass(frozen=True)
class Diff:
    """A unified diff of two versions of a workflow ('' when they read the same)."""

    ref: str
    old: int
    new: int
    text: str


def diff_versions(
    uow: UnitOfWork,
    ref: str,
    old: int | None = None,
    new: int | None = None,
    *,
    as_json: bool = False,
    workspace: str = DEFAULT_WORKSPACE,
) -> Diff:
    """``treadle workflows diff REF [OLD [NEW]]``: the last two versions by default, OLD
    against the latest when only OLD is given, NEW against the version before it when only
    NEW is. NotFound for a version that does not exist; ConflictError when there is no
    earlier version to compare with."""
    owner = uow.definition_owner(ref, workspace)
    stored = [] if owner is None else uow.list_definition_versions(ref, workspace=owner)
    published = [v.version for v in stored]
    if owner is None or not published:
        raise NotFound(f"workflow '{ref}' has no published version")
    listed = ", ".join(str(v) for v in published)
    for wanted in (old, new):
        if wanted is not None and wanted not in published:
            raise NotFound(f"workflow '{ref}' has no version {wanted} (published: {listed})")
    if old is None:
        new = published[-1] if new is None else new
        earlier = [v for v in published if v < new]
        if not earlier:
            raise ConflictError(f"workflow '{ref}' has no version before {new}; nothing to compare")
        old = earlier[-1]
    elif new is None:
        new = published[-1]
    before, after = (
        definition_text(uow.get_definition(ref, v, workspace=owner).documents, as_json=as_json)
        for v in (old, new)
    )
    text = unified_diff(before, after, old_label=f"{ref}@v{old}", new_label=f"{ref}@v{new}")
    return Diff(ref, old, new, text)


def _as_version(info: VersionInfo) -> DefinitionVersion:
    return DefinitionVersion(
        ref=info.ref,
        version=info.version,
        content_hash=info.content_hash,
        created_at=info.created_at,
        author=info.author,
        dialect=info.dialect,
        workspace=info.workspace,
    )
