"""The sandbox route: check a definition against the plan sandbox's policy, storing nothing.

``POST /api/v1/sandbox/check`` takes a definition as ``POST /api/v1/workflows/validate``
does (YAML, or the same definition as JSON) and answers the sandbox's report
``{valid, violations, warnings}`` (``docs/governance.md``), checked under the policy the
token's workspace runs that workflow under (``TREADLE_SANDBOX_POLICY``; an AOS plan under
the AOS policy), else the default policy. A definition that does not validate is 422 with
each problem, as validating it is. Any role.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, FastAPI
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from treadle.api.context import Context
from treadle.api.definitions_http import DEFINITION_BODY, DefinitionBody, definition_body
from treadle.api.errors import CHANGE_RESPONSES, ERROR_RESPONSES
from treadle.api.security import Viewer
from treadle.clientlib.definition_admin import definition_error, definition_issues, errors_only
from treadle.clientlib.pack_admin import server_packs
from treadle.clientlib.registry import registry_catalog
from treadle.common.catalog import Catalog
from treadle.common.sandbox_check import check_definition
from treadle.common.sandbox_report import Finding
from treadle.common.validate import checked_workflow

__all__ = ["PREFIX", "include", "router"]

PREFIX = "/api/v1/sandbox"

router = APIRouter(responses=ERROR_RESPONSES)


class SandboxCheck(BaseModel):
    """The sandbox's report on a definition: `valid` when nothing is a violation."""

    valid: bool
    ref: str
    policy: Literal["aos", "workspace", "default"] = Field(
        description="Which policy checked it: the AOS one, the one in force for the "
        "workspace's workflows, or the default one (no policy is in force for them)."
    )
    violations: list[Finding] = Field(description="What a run of it would be refused for.")
    warnings: list[Finding] = Field(description="What is allowed but worth a look.")


@router.post(
    "/check",
    summary="Check a definition against the sandbox policy",
    name="check_sandbox",
    response_model=SandboxCheck,
    responses=CHANGE_RESPONSES,
    openapi_extra=DEFINITION_BODY,
)
def check(
    principal: Viewer,
    context: Context,
    body: Annotated[DefinitionBody, Depends(definition_body)],
) -> SandboxCheck:
    """Forbidden actions, writes that declare no side effects, and injection in the
    definition's literal inputs, as `treadle validate --policy` reports them; a run's
    parameters and rendered inputs are checked when it starts and at each dispatch.
    Nothing is stored. 422 for a definition that does not validate."""
    spec, read = body.read()
    packs = server_packs(context.settings)
    with context.reading() as uow:
        issues = definition_issues(uow, spec, read, packs.catalog)
        known = registry_catalog(uow.registered_actions()).merged(packs.catalog)
    if spec is None or errors_only(issues):
        raise definition_error(issues)
    known = known.merged(Catalog(workflows={spec.ref: spec}))
    _, graph = checked_workflow(spec, known)
    if graph is None:  # pragma: no cover - a definition without errors compiles
        raise definition_error(issues)
    policies = context.settings.sandbox_policies()
    in_force = policies.for_workflow(spec.dialect, principal.workspace)
    policy = in_force or policies.to_check(spec.dialect, principal.workspace)
    report = check_definition(graph, policy, action_of=known.actions.get)
    source: Literal["aos", "workspace", "default"] = "default"
    if in_force is not None:
        source = "aos" if in_force is policies.aos else "workspace"
    return SandboxCheck(
        valid=report.valid,
        ref=spec.ref,
        policy=source,
        violations=list(report.violations),
        warnings=list(report.warnings),
    )


def _operation_id(route: APIRoute) -> str:
    return route.name


def include(app: FastAPI) -> None:
    """Serve the route under :data:`PREFIX`, its operation id its route's name."""
    app.include_router(
        router, prefix=PREFIX, tags=["sandbox"], generate_unique_id_function=_operation_id
    )
