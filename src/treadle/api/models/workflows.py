"""The bodies of the workflows and packs routes, as the OpenAPI document describes them.

A workflow is shown from its latest published version (what starting it runs), its
definition as ``treadle workflows diff`` renders it, and its versions as ``treadle
workflows versions`` lists them, so the API, the CLI and :class:`treadle.Client` show a
workflow the same way. The workflows/v1 shapes (``?format=v1``) are plain JSON documents
built by :mod:`treadle.scheduler.service.renderings.v1_definitions`, not models here.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from treadle.clientlib.definition_views import WorkflowDetail, WorkflowSummary
from treadle.clientlib.pack_admin import PackInfo, ReloadReport
from treadle.clientlib.publishing import Registered
from treadle.clientlib.versions import VersionInfo
from treadle.common.source import Issue, Severity
from treadle.scheduler.service.deletions import DELETED_DIALECT

__all__ = [
    "MAX_VERSION",
    "DeleteResult",
    "DiffResult",
    "ExecuteRequest",
    "IssueInfo",
    "PackItem",
    "PackList",
    "PublishResult",
    "ReloadResult",
    "ValidationResult",
    "VersionItem",
    "VersionList",
    "WorkflowDocument",
    "WorkflowList",
    "WorkflowListItem",
    "WorkflowSource",
]

#: The greatest version number a request may name (the store's INTEGER column holds 32
#: bits): a greater one is a 422, not a database error.
MAX_VERSION = 2**31 - 1


class WorkflowSource(BaseModel):
    """Where the workflow comes from: a pack (its files are the source: change them and
    reload the packs) or the database alone (published by the API, a client or
    `treadle workflows register`)."""

    kind: Literal["pack", "database"]
    pack: str | None = Field(description="The pack that defines it, as registered.")
    path: str | None = Field(description="The pack's folder, as registered.")


class WorkflowListItem(BaseModel):
    """One workflow, as its latest version has it."""

    ref: str
    pack: str = Field(description="The pack part of the ref (`examples` in `examples.hello`).")
    label: str | None
    description: str | None
    version: int = Field(description="The latest version: what a run starts on.")
    tags: list[str] = Field(description="The `tags` list of the definition's `metadata`.")
    dialect: str = Field(description="The language it was written in: attune, workflows-v1...")
    author: str | None = Field(description="Who published the latest version.")
    created_at: datetime = Field(description="When its first version was published.")
    updated_at: datetime = Field(description="When its latest version was published.")
    source: WorkflowSource

    @classmethod
    def fields_of(cls, summary: WorkflowSummary) -> dict[str, Any]:
        spec = summary.spec
        kind: Literal["pack", "database"] = "pack" if summary.pack is not None else "database"
        return {
            "ref": summary.ref,
            "pack": spec.pack,
            "label": spec.label,
            "description": spec.description,
            "version": summary.version,
            "tags": list(summary.tags),
            "dialect": summary.dialect,
            "author": summary.author,
            "created_at": summary.created_at,
            "updated_at": summary.updated_at,
            "source": WorkflowSource(kind=kind, pack=summary.pack, path=summary.pack_path),
        }

    @classmethod
    def of(cls, summary: WorkflowSummary) -> WorkflowListItem:
        return cls(**cls.fields_of(summary))


class WorkflowList(BaseModel):
    """A page of workflows by ref; pass `next_cursor` back as `cursor` for the next."""

    items: list[WorkflowListItem]
    next_cursor: str | None = Field(description="The cursor of the next page; null after the last.")


class VersionItem(BaseModel):
    """One published version (`treadle workflows versions`)."""

    version: int
    content_hash: str = Field(description="SHA-256 of the definition and its action routes.")
    author: str | None
    created_at: datetime
    dialect: str
    runs: int = Field(description="How many runs were started on this version.")
    deleted: bool = Field(description="A deletion's tombstone: the workflow was deleted here.")

    @classmethod
    def of(cls, info: VersionInfo) -> VersionItem:
        return cls(
            version=info.version,
            content_hash=info.content_hash,
            author=info.author,
            created_at=info.created_at,
            dialect=info.dialect,
            runs=info.runs,
            deleted=info.dialect == DELETED_DIALECT,
        )

    @classmethod
    def all_of(cls, versions: Iterable[VersionInfo]) -> list[VersionItem]:
        return [cls.of(info) for info in versions]


class VersionList(BaseModel):
    """Every version of a workflow, oldest first."""

    workflow: str
    versions: list[VersionItem]


class WorkflowDocument(WorkflowListItem):
    """A workflow: a version's definition and every version."""

    definition_version: int = Field(description="The version `definition` shows.")
    parameters: list[dict[str, Any]] = Field(description="The parameters a run takes.")
    definition: dict[str, Any] = Field(
        description="The definition as stored, made readable as `treadle workflows diff` "
        "shows it: unset and empty fields left out."
    )
    action_routes: dict[str, Any] = Field(
        description="How each action it calls runs (runner, queue), pinned with the version."
    )
    versions: list[VersionItem]

    @classmethod
    def fields_of_detail(cls, detail: WorkflowDetail) -> dict[str, Any]:
        definition = detail.definition
        return {
            **WorkflowListItem.fields_of(detail.summary),
            "definition_version": detail.shown_version,
            "parameters": list(definition.get("parameters") or []),
            "definition": definition,
            "action_routes": detail.action_routes,
            "versions": VersionItem.all_of(detail.versions),
        }

    @classmethod
    def of_detail(cls, detail: WorkflowDetail) -> WorkflowDocument:
        return cls(**cls.fields_of_detail(detail))


class PublishResult(WorkflowDocument):
    """The workflow as published: `new` tells whether this request published a new
    version (201), or the definition was unchanged and kept its version (200)."""

    new: bool

    @classmethod
    def published(cls, detail: WorkflowDetail, registered: Registered) -> PublishResult:
        return cls(**cls.fields_of_detail(detail), new=registered.new)


class DiffResult(BaseModel):
    """A unified diff of two versions' definitions (empty when they read the same)."""

    model_config = ConfigDict(populate_by_name=True)

    workflow: str
    from_version: int = Field(alias="from")
    to_version: int = Field(alias="to")
    diff: str = Field(description="`diff -u` of the two definitions, as `treadle workflows diff`.")


class IssueInfo(BaseModel):
    """One problem of a definition, where it is."""

    file: str
    line: int
    column: int
    message: str
    severity: Literal["error", "warning"]

    @classmethod
    def of(cls, issue: Issue) -> IssueInfo:
        return cls(
            file=issue.loc.file,
            line=issue.loc.line,
            column=issue.loc.col,
            message=issue.message,
            severity="warning" if issue.severity is Severity.WARNING else "error",
        )


class ValidationResult(BaseModel):
    """The definition is valid (an invalid one answers 422 with each problem)."""

    valid: Literal[True] = True
    ref: str
    warnings: list[IssueInfo] = Field(description="What may still go wrong (unknown actions...).")


class ExecuteRequest(BaseModel):
    """The run's parameters, and the version to run (default: the latest)."""

    model_config = ConfigDict(extra="forbid")

    parameters: dict[str, Any] = Field(default_factory=dict)
    version: int | None = Field(default=None, ge=1, le=MAX_VERSION)
    priority: int | None = Field(
        default=None,
        ge=0,
        le=9,
        description="The run's priority, 0-9 (9 first); default: the workflow's, else 5.",
    )
    seed: int | None = Field(
        default=None,
        ge=0,
        lt=2**63,
        description="The run's seed (`system.seed`, per-step seeds, `uuid()`): the same seed "
        "and the same results give the same decisions. Default: a random one.",
    )
    budget: dict[str, Any] | None = Field(
        default=None,
        description="Limits of the run's budget, each winning over the workflow's "
        "(`{cost_usd, wall_time, attempts, items, soft_ratio, step_cost_usd}`); 422 for a "
        "bad or unknown one, or one above the workspace's ceiling.",
        examples=[{"cost_usd": 20}],
    )


class DeleteResult(BaseModel):
    """The workflow is deleted: no new run starts it; runs started before go on."""

    workflow: str
    deleted_by: str | None
    deleted_at: datetime
    tombstone_version: int = Field(description="The version that marks the deletion.")
    last_version: int = Field(description="The last version with a definition.")


class PackItem(BaseModel):
    """A registered pack and what it provides."""

    name: str
    version: str | None
    path: str | None = Field(description="The pack's folder, as the scheduler registered it.")
    registered_at: datetime
    workflows: list[str]
    actions: list[str]

    @classmethod
    def of(cls, info: PackInfo) -> PackItem:
        return cls(
            name=info.name,
            version=info.version,
            path=info.path,
            registered_at=info.registered_at,
            workflows=list(info.workflows),
            actions=list(info.actions),
        )


class PackList(BaseModel):
    """A page of packs by name; pass `next_cursor` back as `cursor` for the next."""

    items: list[PackItem]
    next_cursor: str | None


class PackChanges(BaseModel):
    added: list[str]
    updated: list[str]
    unchanged: list[str]
    not_found: list[str] = Field(
        description="Registered before, not on the server's pack paths now: left registered."
    )


class ActionChanges(BaseModel):
    added: list[str]
    removed: list[str]
    changed: list[str] = Field(description="Another runner, entry point, queue or parameters.")


class ReloadedWorkflow(BaseModel):
    ref: str
    version: int
    new: bool = Field(description="Whether the reload published this version.")


class ReloadResult(BaseModel):
    """What a reload of the packs changed."""

    paths: list[str] = Field(description="The pack paths read: the shipped packs, then yours.")
    packs: PackChanges
    actions: ActionChanges
    workflows: list[ReloadedWorkflow]
    warnings: list[IssueInfo]

    @classmethod
    def of(cls, report: ReloadReport) -> ReloadResult:
        return cls(
            paths=list(report.paths),
            packs=PackChanges(
                added=list(report.packs_added),
                updated=list(report.packs_updated),
                unchanged=list(report.packs_unchanged),
                not_found=list(report.packs_not_found),
            ),
            actions=ActionChanges(
                added=list(report.actions_added),
                removed=list(report.actions_removed),
                changed=list(report.actions_changed),
            ),
            workflows=[
                ReloadedWorkflow(ref=item.ref, version=item.version, new=item.new)
                for item in report.workflows
            ],
            warnings=[IssueInfo.of(issue) for issue in report.warnings],
        )
