"""Published workflow definitions and the registry of packs and actions.

A definition is published as numbered versions per ref: registering the same documents
again returns the version already published; changed documents publish the next number.
A run records the version it was started from, so what ran can be shown later even after
the files changed. The registry (``packs``, ``actions``) is a snapshot of the loaded
catalog for services that list or route actions without reading pack folders.

Each definition has an owner, its ``workspace``: ``''`` (:data:`SHARED_WORKSPACE`) for a
workflow every workspace shares (pack paths, the CLI, clients), or the workspace a token
created it in through the HTTP API. Versions are numbered per owner and ref. Which
definition a workspace sees under a ref is :meth:`DefinitionRepository.definition_owner`:
its own when it has one, else the shared one; every other method reads one owner's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError

from treadle.common.access import SHARED_WORKSPACE
from treadle.common.catalog import Catalog
from treadle.common.errors import ConflictError, NotFound
from treadle.common.spec import RunnerType
from treadle.scheduler.store.base import Repository
from treadle.scheduler.store.entries import DefinitionVersion
from treadle.scheduler.store.models import actions, definitions, packs


def content_hash(documents: Mapping[str, str]) -> str:
    """sha256 of the documents in a canonical form (sorted by file name, UTF-8 JSON)."""
    canonical = json.dumps(
        dict(sorted(documents.items())), ensure_ascii=False, separators=(",", ":")
    )
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class DefinitionRepository(Repository):
    """Definition versions and the pack/action registry."""

    def register_definition(
        self,
        ref: str,
        documents: Mapping[str, str],
        *,
        dialect: str,
        author: str | None,
        at: datetime,
        workspace: str = SHARED_WORKSPACE,
    ) -> DefinitionVersion:
        """Publish ``documents`` as the next version of ``ref`` (owned by ``workspace``)
        unless they are unchanged."""
        docs = {str(name): str(text) for name, text in documents.items()}
        digest = content_hash(docs)
        latest = self._latest(ref, workspace)
        if latest is not None and latest.content_hash == digest:
            return latest
        version = 1 if latest is None else latest.version + 1
        row = {
            "workspace": workspace,
            "ref": ref,
            "version": version,
            "content_hash": digest,
            "dialect": dialect,
            "documents": docs,
            "author": author,
            "created_at": at,
        }
        try:
            with self._conn.begin_nested():
                self._conn.execute(definitions.insert(), row)
        except IntegrityError:  # another process published this version number meanwhile
            raced = self._latest(ref, workspace)
            if raced is not None and raced.content_hash == digest:
                return raced
            raise ConflictError(
                f"definition {ref} was changed concurrently; register it again"
            ) from None
        return definition_version(row, created=True)

    def definition_owner(self, ref: str, workspace: str) -> str | None:
        """Whose definition of ``ref`` ``workspace`` sees: its own (``workspace``) when it
        has published one, else the shared one (``''``); None when neither exists."""
        owners = {
            str(owner)
            for owner in self._conn.execute(
                select(definitions.c.workspace)
                .where(
                    definitions.c.ref == ref,
                    definitions.c.workspace.in_(sorted({workspace, SHARED_WORKSPACE})),
                )
                .distinct()
            ).scalars()
        }
        if workspace in owners:
            return workspace
        return SHARED_WORKSPACE if SHARED_WORKSPACE in owners else None

    def _latest(self, ref: str, workspace: str) -> DefinitionVersion | None:
        row = (
            self._conn.execute(
                select(definitions)
                .where(definitions.c.workspace == workspace, definitions.c.ref == ref)
                .order_by(definitions.c.version.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        return None if row is None else definition_version(row)

    def get_definition(
        self, ref: str, version: int | None = None, *, workspace: str = SHARED_WORKSPACE
    ) -> DefinitionVersion:
        """Version ``version`` of ``workspace``'s ``ref`` (the latest when ``None``), with
        its documents."""
        if version is None:
            found = self._latest(ref, workspace)
        else:
            row = (
                self._conn.execute(
                    select(definitions).where(
                        definitions.c.workspace == workspace,
                        definitions.c.ref == ref,
                        definitions.c.version == version,
                    )
                )
                .mappings()
                .first()
            )
            found = None if row is None else definition_version(row)
        if found is None:
            which = "any version" if version is None else f"version {version}"
            raise NotFound(f"definition {ref} has no {which}")
        return found

    def list_definition_versions(
        self, ref: str, *, workspace: str = SHARED_WORKSPACE
    ) -> list[DefinitionVersion]:
        """Every version of ``workspace``'s ``ref``, oldest first, without their documents."""
        rows = self._conn.execute(
            select(*_HEAD)
            .where(definitions.c.workspace == workspace, definitions.c.ref == ref)
            .order_by(definitions.c.version)
        ).mappings()
        return [definition_version(row) for row in rows]

    def latest_definition_head(
        self, ref: str, *, workspace: str = SHARED_WORKSPACE
    ) -> DefinitionVersion | None:
        """The latest version of ``workspace``'s ``ref`` without its documents (one short
        query)."""
        row = (
            self._conn.execute(
                select(*_HEAD)
                .where(definitions.c.workspace == workspace, definitions.c.ref == ref)
                .order_by(definitions.c.version.desc())
                .limit(1)
            )
            .mappings()
            .first()
        )
        return None if row is None else definition_version(row)

    def register_catalog(self, catalog: Catalog, at: datetime) -> None:
        """Record the catalog's packs and actions (workflows count as actions too).

        The catalog replaces what was registered for each of its packs: an action a pack no
        longer has is removed. Packs the catalog does not contain are left alone.
        """
        pack_rows = [
            {
                "ref": pack.ref,
                "version": pack.version,
                "path": pack.path,
                "config": pack.model_dump(mode="json")["config"],
                "registered_at": at,
            }
            for pack in catalog.packs.values()
        ]
        action_rows: dict[str, dict[str, Any]] = {}
        for workflow in catalog.workflows.values():
            action_rows[workflow.ref] = {
                "ref": workflow.ref,
                "pack_ref": workflow.pack,
                "runner_type": RunnerType.WORKFLOW.value,
                "entry_point": None,
                "queue": None,
                "parameters": [p.model_dump(mode="json") for p in workflow.parameters],
                "registered_at": at,
            }
        for action in catalog.actions.values():
            action_rows[action.ref] = {
                "ref": action.ref,
                "pack_ref": action.pack,
                "runner_type": action.runner_type.value,
                "entry_point": action.entry_point,
                "queue": action.queue,
                "parameters": [p.model_dump(mode="json") for p in action.parameters],
                "registered_at": at,
            }
        pack_refs = sorted(catalog.packs)
        if pack_refs:
            self._conn.execute(
                delete(actions).where(
                    actions.c.pack_ref.in_(pack_refs), actions.c.ref.not_in(sorted(action_rows))
                )
            )
        self._upsert(packs, pack_rows, ("ref",))
        self._upsert(actions, list(action_rows.values()), ("ref",))

    def pack_config(self, ref: str) -> dict[str, Any]:
        """The configuration registered for pack ``ref`` (empty when it is not registered)."""
        config = self._conn.execute(
            select(packs.c.config).where(packs.c.ref == ref)
        ).scalar_one_or_none()
        return dict(config) if isinstance(config, dict) else {}

    def registered_actions(self) -> list[dict[str, Any]]:
        """The registry's actions as plain rows, by ref."""
        rows = self._conn.execute(select(actions).order_by(actions.c.ref)).mappings()
        return [dict(row) for row in rows]


#: The columns of a version without its documents.
_HEAD = (
    definitions.c.workspace,
    definitions.c.ref,
    definitions.c.version,
    definitions.c.content_hash,
    definitions.c.created_at,
    definitions.c.author,
    definitions.c.dialect,
)


def definition_version(row: Mapping[Any, Any], *, created: bool = False) -> DefinitionVersion:
    """A definitions row (documents included or not) as a :class:`DefinitionVersion`."""
    return DefinitionVersion(
        ref=row["ref"],
        version=row["version"],
        content_hash=row["content_hash"],
        created_at=row["created_at"],
        author=row["author"],
        dialect=row["dialect"],
        documents=dict(row.get("documents") or {}),
        created=created,
        workspace=row["workspace"],
    )
