"""The workflows routes: list, read and compare workflow definitions over HTTP, and
include the routes that change them (:mod:`.workflow_changes`).

Under ``/api/v1/workflows``, with the Attune plan's paths registered too, each at its own
path with its own operation id (``GET /api/v1/packs/{pack_ref}/workflows`` here; ``POST
/api/v1/packs/{pack_ref}/workflows``, ``PUT /api/v1/workflows/{ref}`` and ``POST
/api/v1/workflows/{ref}/validate`` with the changes). Reads need any role and happen in
one snapshot; ``?format=v1`` (or the v1 media type in ``Accept``) answers in the
workflows/v1 shapes. What is listed and shown is the client library's
(:mod:`treadle.clientlib.definition_views`); these handlers only read the request and
shape the answer.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path, Query
from fastapi.routing import APIRoute

from treadle.api.context import ApiContext, Context
from treadle.api.definitions_http import V1_MEDIA_TYPE, WantsV1, v1_response
from treadle.api.errors import CHANGE_RESPONSES, ERROR_RESPONSES
from treadle.api.models.workflows import (
    MAX_VERSION,
    DiffResult,
    VersionItem,
    VersionList,
    WorkflowDocument,
    WorkflowList,
    WorkflowListItem,
)
from treadle.api.routes import workflow_changes
from treadle.api.security import Viewer
from treadle.clientlib.definition_views import (
    MAX_WORKFLOW_PAGE,
    WorkflowDetail,
    describe_workflow,
    diff_versions,
    list_workflows,
)
from treadle.clientlib.versions import list_versions
from treadle.common.access import Principal
from treadle.scheduler.service.renderings.v1_definitions import v1_definition, v1_version
from treadle.scheduler.store import UnitOfWork

__all__ = ["PREFIX", "include", "router"]

PREFIX = "/api/v1"

router = APIRouter(responses=ERROR_RESPONSES)

Ref = Annotated[str, Path(description="The workflow's ref, e.g. `examples.hello_world`.")]
PackRef = Annotated[str, Path(description="The pack's name (the first part of its refs).")]
Cursor = Annotated[
    str | None,
    Query(description="The `next_cursor` of the previous page; omit it for the first."),
]
_V1: dict[int | str, dict[str, Any]] = {
    200: {"content": {V1_MEDIA_TYPE: {}}, "description": "Treadle's shape, or the v1 one."}
}


# -- reads ---------------------------------------------------------------------------------


def _list(
    context: ApiContext,
    principal: Principal,
    *,
    pack: str | None,
    tag: str | None,
    limit: int,
    cursor: str | None,
    v1: bool,
) -> Any:
    with context.reading() as uow:
        page = list_workflows(
            uow, pack=pack, tag=tag, limit=limit, cursor=cursor, workspace=principal.workspace
        )
    shown = page.workflows
    if v1:
        items = [
            v1_definition(
                s.spec,
                latest_version=s.version,
                tags=s.tags,
                created_at=s.created_at,
                updated_at=s.updated_at,
            )
            for s in shown
        ]
        return v1_response({"items": items, "next_cursor": page.next_cursor})
    return WorkflowList(items=[WorkflowListItem.of(s) for s in shown], next_cursor=page.next_cursor)


Limit = Annotated[int, Query(ge=1, le=MAX_WORKFLOW_PAGE, description="Workflows per page.")]
Tag = Annotated[str | None, Query(description="Only workflows with this tag.")]


@router.get(
    "/workflows",
    summary="List workflows",
    name="list_workflows",
    response_model=WorkflowList,
    responses=_V1,
)
def list_all(
    *,
    principal: Viewer,
    context: Context,
    v1: WantsV1,
    pack: Annotated[str | None, Query(description="Only the workflows of this pack.")] = None,
    tag: Tag = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Any:
    """A page of the published workflows by ref (deleted ones left out), each as its
    latest version has it. Pass `next_cursor` back as `cursor`, with the same filters, for
    the next page. `?format=v1`: the items are workflows/v1 `WorkflowDefinition`s."""
    return _list(context, principal, pack=pack, tag=tag, limit=limit, cursor=cursor, v1=v1)


@router.get(
    "/packs/{pack_ref}/workflows",
    summary="List a pack's workflows (Attune path)",
    name="list_pack_workflows",
    response_model=WorkflowList,
    responses=_V1,
)
def list_of_pack(
    *,
    pack_ref: PackRef,
    principal: Viewer,
    context: Context,
    v1: WantsV1,
    tag: Tag = None,
    limit: Limit = 50,
    cursor: Cursor = None,
) -> Any:
    """`GET /api/v1/workflows?pack={pack_ref}`: the same page, the same answer."""
    return _list(context, principal, pack=pack_ref, tag=tag, limit=limit, cursor=cursor, v1=v1)


def _v1_workflow(
    context: ApiContext, uow: UnitOfWork, detail: WorkflowDetail, workspace: str
) -> dict[str, Any]:
    """``{"definition", "version"}`` in the v1 shapes, the version the one ``detail`` shows."""
    latest, ref, version = detail.summary, detail.summary.ref, detail.shown_version
    pinned = context.definitions.pinned(ref, version, uow, workspace=workspace)
    stored = next(v for v in detail.versions if v.version == version)
    return {
        "definition": v1_definition(
            latest.spec,
            latest_version=latest.version,
            tags=latest.tags,
            created_at=latest.created_at,
            updated_at=latest.updated_at,
        ),
        "version": v1_version(
            pinned.spec,
            pinned.graph,
            version=version,
            author=stored.author,
            created_at=stored.created_at,
        ),
    }


@router.get(
    "/workflows/{ref}",
    summary="One workflow: its definition and versions",
    name="get_workflow",
    response_model=WorkflowDocument,
    responses=_V1,
)
def get_workflow(
    ref: Ref,
    principal: Viewer,
    context: Context,
    v1: WantsV1,
    version: Annotated[
        int | None,
        Query(ge=1, le=MAX_VERSION, description="The version to show (default: the latest)."),
    ] = None,
) -> Any:
    """The workflow as its latest version (or `version`) has it: parameters, the
    definition as `treadle workflows diff` renders it, the action routes pinned with it,
    and every version. 404 for a deleted workflow (its versions and diffs stay readable).
    `?format=v1`: `{"definition", "version"}` as a workflows/v1 `PublishVersion` answers."""
    with context.reading() as uow:
        detail = describe_workflow(uow, ref, version, principal.workspace)
        if v1:
            return v1_response(_v1_workflow(context, uow, detail, principal.workspace))
    return WorkflowDocument.of_detail(detail)


@router.get(
    "/workflows/{ref}/versions",
    summary="A workflow's versions",
    name="list_workflow_versions",
    response_model=VersionList,
    responses=_V1,
)
def get_versions(ref: Ref, principal: Viewer, context: Context, v1: WantsV1) -> Any:
    """Every published version, oldest first, as `treadle workflows versions` lists them
    (with how many runs started on each); a deleted workflow's tombstone is last, marked
    `deleted`. `?format=v1`: `{"versions": [...]}` as v1 `WorkflowVersion`s (tombstones
    left out)."""
    with context.reading() as uow:
        versions = list_versions(uow, ref, principal.workspace)
        if v1:
            shown = []
            for info in versions:
                if VersionItem.of(info).deleted:
                    continue
                pinned = context.definitions.pinned(
                    ref, info.version, uow, workspace=principal.workspace
                )
                shown.append(
                    v1_version(
                        pinned.spec,
                        pinned.graph,
                        version=info.version,
                        author=info.author,
                        created_at=info.created_at,
                    )
                )
            return v1_response({"versions": shown})
    return VersionList(workflow=ref, versions=VersionItem.all_of(versions))


@router.get(
    "/workflows/{ref}/diff",
    summary="Compare two versions of a workflow",
    name="diff_workflow_versions",
    response_model=DiffResult,
    responses={409: CHANGE_RESPONSES[409]},
)
def get_diff(
    *,
    ref: Ref,
    principal: Viewer,
    context: Context,
    from_version: Annotated[
        int | None,
        Query(
            alias="from",
            ge=1,
            le=MAX_VERSION,
            description="The older version (default: the one before).",
        ),
    ] = None,
    to_version: Annotated[
        int | None,
        Query(alias="to", ge=1, le=MAX_VERSION, description="The newer version (default: latest)."),
    ] = None,
    as_json: Annotated[
        bool, Query(alias="json", description="Compare pretty-printed JSON instead of YAML.")
    ] = False,
) -> DiffResult:
    """A unified diff of two versions' definitions, as `treadle workflows diff REF [FROM
    [TO]]` prints it: the last two by default. Empty when they read the same; 404 for a
    version that does not exist, 409 when there is no earlier version to compare with."""
    with context.reading() as uow:
        diff = diff_versions(
            uow, ref, from_version, to_version, as_json=as_json, workspace=principal.workspace
        )
    return DiffResult(workflow=ref, from_version=diff.old, to_version=diff.new, diff=diff.text)


def _operation_id(route: APIRoute) -> str:
    return route.name


def include(app: FastAPI) -> None:
    """Serve the reads and the changes under :data:`PREFIX`, each operation id its route's
    name."""
    for routes in (router, workflow_changes.router):
        app.include_router(
            routes, prefix=PREFIX, tags=["workflows"], generate_unique_id_function=_operation_id
        )
