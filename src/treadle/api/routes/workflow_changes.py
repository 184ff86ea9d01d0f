"""The workflows routes that change something: publish, delete, validate and execute.

Included with the reads by :func:`treadle.api.routes.workflows.include`, under
``/api/v1``: ``POST /workflows`` and the Attune plan's ``POST /packs/{pack_ref}/workflows``
and ``PUT /workflows/{ref}`` publish (admin), ``DELETE /workflows/{ref}`` deletes (admin),
``POST /workflows/validate`` and ``/workflows/{ref}/validate`` check without storing (any
role), ``POST /workflows/{ref}/execute`` starts a run (operator). Each change is made in
one transaction with its audit entry (``workflow.publish``, ``workflow.delete``,
``run.start``); the rules (what a definition may be, who owns a pack's workflow, what
deleting does, how a run starts) are :mod:`treadle.clientlib.definition_admin`'s.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Header, Path, Query
from fastapi.responses import JSONResponse

from treadle.api.audit import audited
from treadle.api.context import ApiContext, Context
from treadle.api.definitions_http import DEFINITION_BODY, DefinitionBody, definition_body
from treadle.api.errors import CHANGE_RESPONSES, ERROR_RESPONSES
from treadle.api.models.runs import RunDocument
from treadle.api.models.workflows import (
    DeleteResult,
    ExecuteRequest,
    IssueInfo,
    PublishResult,
    ValidationResult,
)
from treadle.api.security import Admin, Operator, Viewer
from treadle.clientlib.definition_admin import (
    check_not_from_pack,
    definition_error,
    definition_issues,
    delete_workflow,
    errors_only,
    publish_definition,
    start_workflow,
)
from treadle.clientlib.definition_views import describe_workflow
from treadle.clientlib.pack_admin import server_packs
from treadle.common.access import Principal
from treadle.common.budget import checked_budget
from treadle.common.source import Issue, Severity
from treadle.common.spec import WorkflowSpec
from treadle.scheduler.service.run_document import stored_run_document
from treadle.scheduler.service.starting import RunOptions

__all__ = ["PREFIX", "router"]

#: Where the routes are served (``include`` adds the prefix).
PREFIX = "/api/v1"

router = APIRouter(responses=ERROR_RESPONSES)

Ref = Annotated[str, Path(description="The workflow's ref, e.g. `examples.hello_world`.")]
PackRef = Annotated[str, Path(description="The pack's name (the first part of its refs).")]
Definition = Annotated[DefinitionBody, Depends(definition_body)]

_PUBLISH = {**CHANGE_RESPONSES, 201: {"model": PublishResult, "description": "A new version."}}
_PUBLISH_DOC = (
    " The body is YAML (`Content-Type: application/yaml`) or the same definition as a "
    "JSON object. It is validated as `treadle workflows register` validates it: a bad "
    "definition is 422 naming each problem's line and column, and stores nothing. A "
    "workflow a pack file defines is 409 naming the file. 201 with the new version; 200 "
    "when the definition is unchanged (it keeps its version). Needs the admin role."
)


# -- publishing ------------------------------------------------------------------------------


def _named(spec: WorkflowSpec | None, ref: str | None, pack: str | None) -> list[Issue]:
    """A problem when the definition is not the workflow (or pack) the path names."""
    if spec is None:
        return []
    where = spec.source.loc(("ref",))
    if ref is not None and spec.ref != ref:
        return [Issue(where, f"the definition's ref '{spec.ref}' is not '{ref}', the path's")]
    if pack is not None and spec.pack != pack:
        return [
            Issue(
                where,
                f"'{spec.ref}' is not a workflow of pack '{pack}': its ref must "
                f"start with '{pack}.'",
            )
        ]
    return []


def _publish(
    context: ApiContext,
    principal: Principal,
    body: DefinitionBody,
    *,
    ref: str | None = None,
    pack: str | None = None,
) -> JSONResponse:
    spec, read = body.read(default_ref=ref)
    read = [*read, *_named(spec, ref, pack)]
    packs = server_packs(context.settings)  # the files before the transaction
    details: dict[str, Any] = {}
    target = spec.ref if spec is not None else ref
    # the audit entry is written when the block ends: what is added to details goes in it
    with audited(context, principal, "workflow.publish", target, details) as uow:
        if spec is None:
            raise definition_error(read)
        check_not_from_pack(uow, spec.ref, packs, "replacing", principal.workspace)
        issues = definition_issues(uow, spec, read, packs.catalog)
        if errors_only(issues):
            raise definition_error(issues)
        registered = publish_definition(
            context.store,
            uow,
            spec,
            packs=packs,
            author=principal.actor,
            clock=context.clock,
            workspace=principal.workspace,
        )
        details.update(version=registered.version, new=registered.new)
        detail = describe_workflow(uow, spec.ref, workspace=principal.workspace)
    result = PublishResult.published(detail, registered)
    return JSONResponse(
        result.model_dump(mode="json"),
        status_code=201 if registered.new else 200,
        headers={"Location": f"{PREFIX}/workflows/{spec.ref}"},
    )


@router.post(
    "/workflows",
    summary="Create or replace a workflow",
    name="create_workflow",
    response_model=PublishResult,
    responses=_PUBLISH,
    openapi_extra=DEFINITION_BODY,
    description="Publish the definition as the next version of its ref." + _PUBLISH_DOC,
)
def create(principal: Admin, context: Context, body: Definition) -> JSONResponse:
    return _publish(context, principal, body)


@router.post(
    "/packs/{pack_ref}/workflows",
    summary="Create or replace a workflow of a pack (Attune path)",
    name="create_pack_workflow",
    response_model=PublishResult,
    responses=_PUBLISH,
    openapi_extra=DEFINITION_BODY,
    description="`POST /api/v1/workflows` for a workflow of `pack_ref`: its ref must start "
    "with `{pack_ref}.` (else 422)." + _PUBLISH_DOC,
)
def create_in_pack(
    pack_ref: PackRef, principal: Admin, context: Context, body: Definition
) -> JSONResponse:
    return _publish(context, principal, body, pack=pack_ref)


@router.put(
    "/workflows/{ref}",
    summary="Replace a workflow (Attune path)",
    name="update_workflow",
    response_model=PublishResult,
    responses=_PUBLISH,
    openapi_extra=DEFINITION_BODY,
    description="`POST /api/v1/workflows` for the workflow the path names: a definition "
    "without a `ref` takes it, one with another ref is 422." + _PUBLISH_DOC,
)
def update(ref: Ref, principal: Admin, context: Context, body: Definition) -> JSONResponse:
    return _publish(context, principal, body, ref=ref)


@router.delete(
    "/workflows/{ref}",
    summary="Delete a workflow",
    name="delete_workflow",
    response_model=DeleteResult,
    responses=CHANGE_RESPONSES,
)
def delete(
    ref: Ref,
    principal: Admin,
    context: Context,
    reason: Annotated[
        str | None, Query(max_length=1000, description="Why: kept in the audit log.")
    ] = None,
) -> DeleteResult:
    """No new run can start the workflow (any version of it: 404 `was deleted`); runs
    started before go on, and its versions stay readable. Publishing it again brings it
    back. A workflow a pack file defines is 409 naming the file; an unknown or deleted one
    404. Needs the admin role."""
    packs = server_packs(context.settings)
    details = {"reason": reason} if reason is not None else None
    with audited(context, principal, "workflow.delete", ref, details) as uow:
        tombstone = delete_workflow(
            uow,
            ref,
            packs=packs,
            author=principal.actor,
            at=context.clock(),
            reason=reason,
            workspace=principal.workspace,
        )
    return DeleteResult(
        workflow=ref,
        deleted_by=tombstone.author,
        deleted_at=tombstone.created_at,
        tombstone_version=tombstone.version,
        last_version=tombstone.version - 1,
    )


def _validate(
    context: ApiContext, body: DefinitionBody, *, ref: str | None = None
) -> ValidationResult:
    spec, read = body.read(default_ref=ref)
    read = [*read, *_named(spec, ref, None)]
    packs = server_packs(context.settings)
    with context.reading() as uow:
        issues = definition_issues(uow, spec, read, packs.catalog)
    if spec is None or errors_only(issues):
        raise definition_error(issues)
    warnings = [IssueInfo.of(i) for i in issues if i.severity is Severity.WARNING]
    return ValidationResult(ref=spec.ref, warnings=warnings)


_VALIDATE_DOC = (
    ' Nothing is stored. 200 `{"valid": true, "ref", "warnings"}`, or 422 with each '
    "problem (`details`: file, line, column, message), as `treadle validate` reports them."
)


@router.post(
    "/workflows/validate",
    summary="Validate a definition",
    name="validate_workflow",
    response_model=ValidationResult,
    responses=CHANGE_RESPONSES,
    openapi_extra=DEFINITION_BODY,
    description="Check a definition as publishing it would." + _VALIDATE_DOC,
)
def validate(principal: Viewer, context: Context, body: Definition) -> ValidationResult:
    del principal
    return _validate(context, body)


@router.post(
    "/workflows/{ref}/validate",
    summary="Validate a definition of a workflow (Attune path)",
    name="validate_workflow_ref",
    response_model=ValidationResult,
    responses=CHANGE_RESPONSES,
    openapi_extra=DEFINITION_BODY,
    description="`POST /api/v1/workflows/validate` for the workflow the path names (a "
    "definition without a `ref` takes it; another ref is a problem)." + _VALIDATE_DOC,
)
def validate_ref(
    ref: Ref, principal: Viewer, context: Context, body: Definition
) -> ValidationResult:
    del principal
    return _validate(context, body, ref=ref)


# -- executing -------------------------------------------------------------------------------


@router.post(
    "/workflows/{ref}/execute",
    summary="Start a run of a workflow",
    name="execute_workflow",
    response_model=RunDocument,
    status_code=201,
    responses={
        **CHANGE_RESPONSES,
        200: {
            "model": RunDocument,
            "description": "A run started before with the same Idempotency-Key.",
        },
    },
)
def execute(
    ref: Ref,
    principal: Operator,
    context: Context,
    body: Annotated[ExecuteRequest | None, Body()] = None,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=200,
            description="Starting twice with one key starts one run: the second answers "
            "it (200) instead of starting another (201).",
        ),
    ] = None,
) -> JSONResponse:
    """Start a run of the latest version (or `version`) with `parameters`, exactly as
    `Client.start` does. 201 with the run document (`Location`: the run); 200 with the
    run an `Idempotency-Key` already started. 422 naming each bad parameter (nothing is
    started); 404 for an unknown workflow or version, or a deleted workflow. Needs the
    operator role."""
    request = body or ExecuteRequest()
    options = RunOptions(
        identity={"login": principal.actor, "via": "api"},
        idempotency_key=idempotency_key,
        workspace=principal.workspace,
        priority=request.priority,
        seed=request.seed,
        budget=None if request.budget is None else checked_budget(request.budget),
    )
    details: dict[str, Any] = {"version": request.version, "idempotency_key": idempotency_key}
    starter = context.run_starter()
    # the audit entry is written when the block ends: what is added to details goes in it
    with audited(context, principal, "run.start", ref, details) as uow:
        pinned, started = start_workflow(
            uow,
            starter,
            context.definitions,
            ref,
            version=request.version,
            parameters=request.parameters,
            options=options,
        )
        details.update(version=pinned.version, run=started.run_id, created=started.created)
    with context.reading() as uow:
        document = stored_run_document(uow, started.run_id)
    return JSONResponse(
        document,
        status_code=201 if started.created else 200,
        headers={"Location": f"{PREFIX}/runs/{started.run_id}"},
    )
