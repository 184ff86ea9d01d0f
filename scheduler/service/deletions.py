"""Deleting a workflow: a tombstone version, so no new run starts it and runs in flight go on.

Deleting a ref (``DELETE /api/v1/workflows/{ref}``, :func:`delete_definition`) publishes
a *tombstone* as its next version: a version with no definition, of dialect ``deleted``,
whose one document (``deleted.json``) says which version was the last and why. Nothing
is removed, so the definitions table carries it as it is (no migration):

* runs pinned to earlier versions go on, retry and compensate as before (they are pinned
  to their own version, never to the latest);
* no new run starts, of any version: the start path calls :func:`check_startable` in the
  transaction that would create the run, which raises :class:`WorkflowDeleted` (a
  NotFound) when the latest version is a tombstone;
* event triggers stop (a tombstone has no trigger), and listings leave the ref out;
* ``treadle workflows versions`` still shows the history, the tombstone last.

Publishing the workflow again (with any content) publishes the version after the
tombstone: the workflow is back.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Final

from treadle.common.access import SHARED_WORKSPACE
from treadle.common.errors import NotFound
from treadle.scheduler.core.namespaces import iso
from treadle.scheduler.store import DefinitionVersion, UnitOfWork

__all__ = [
    "DELETED_DIALECT",
    "TOMBSTONE_DOCUMENT",
    "WorkflowDeleted",
    "check_startable",
    "delete_definition",
    "deleted_message",
    "is_tombstone",
    "latest_tombstone",
]

#: The dialect of a tombstone version (a definition's dialect is never this).
DELETED_DIALECT: Final = "deleted"
#: The one document of a tombstone version.
TOMBSTONE_DOCUMENT: Final = "deleted.json"


class WorkflowDeleted(NotFound):
    """The workflow was deleted: no new run can start it (publish it again first)."""


def is_tombstone(version: DefinitionVersion) -> bool:
    """Whether ``version`` marks its ref deleted (with or without its documents)."""
    return version.dialect == DELETED_DIALECT


def deleted_message(tombstone: DefinitionVersion) -> str:
    """Why a deleted workflow cannot start: when, by whom, and how to bring it back."""
    by = f" by {tombstone.author}" if tombstone.author else ""
    return (
        f"workflow '{tombstone.ref}' was deleted{by} at {iso(tombstone.created_at)} "
        f"(v{tombstone.version}); no new run can start it until it is published again"
    )


def latest_tombstone(
    uow: UnitOfWork, ref: str, workspace: str = SHARED_WORKSPACE
) -> DefinitionVersion | None:
    """The latest version of ``workspace``'s ``ref`` if it is a tombstone (one short
    query, no documents)."""
    head = uow.latest_definition_head(ref, workspace=workspace)
    return head if head is not None and is_tombstone(head) else None


def check_startable(uow: UnitOfWork, ref: str, workspace: str = SHARED_WORKSPACE) -> None:
    """Raise :class:`WorkflowDeleted` when ``workspace``'s ``ref`` is deleted (its latest
    version is a tombstone): a new run of it, of any version, is refused."""
    tombstone = latest_tombstone(uow, ref, workspace)
    if tombstone is not None:
        raise WorkflowDeleted(deleted_message(tombstone))


def delete_definition(
    uow: UnitOfWork,
    ref: str,
    *,
    author: str | None,
    at: datetime,
    reason: str | None = None,
    workspace: str = SHARED_WORKSPACE,
) -> DefinitionVersion:
    """Publish the tombstone of ``ref`` in ``uow`` and return it.

    NotFound when nothing is published under ``ref``; WorkflowDeleted when it is deleted
    already.
    """
    versions = uow.list_definition_versions(ref, workspace=workspace)
    if not versions:
        raise NotFound(f"workflow '{ref}' has no published version")
    last = versions[-1]
    if is_tombstone(last):
        raise WorkflowDeleted(deleted_message(last))
    document = {"deleted": ref, "last_version": last.version, "reason": reason}
    return uow.register_definition(
        ref,
        {TOMBSTONE_DOCUMENT: json.dumps(document, sort_keys=True)},
        dialect=DELETED_DIALECT,
        author=author,
        at=at,
        workspace=workspace,
    )
