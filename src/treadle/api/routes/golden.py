"""Golden records and replays over HTTP: what ``treadle golden verify`` and ``treadle
replay`` do, for a verifier or a CI job that reaches the API and not the database.

* ``POST /api/v1/golden/verify``: the record's bytes as the body (JSON lines,
  ``Content-Type: application/jsonl``), its ``.sig`` in the ``Golden-Signature`` header,
  checked with this process's ``TREADLE_GOLDEN_KEY``, then replayed; answers the verdict
  ``treadle golden verify`` prints (:class:`~treadle.scheduler.service.golden.Verification`).
* ``POST /api/v1/golden/replay?workflow=REF&version=N``: a record (as above, its signature
  not checked: ``verify`` does that) replayed against a stored version;
* ``POST /api/v1/runs/{run_id}/replay?workflow=REF&version=N``: a run of the token's
  workspace replayed against a stored version; both answer the report ``treadle replay
  --json`` prints (``scheduler/service/version_replays.py``).

Operators and admins. Nothing is stored, so nothing is audited. Each verdict and each
replay that diverged is counted in the process's registry (``api/golden_metrics.py``),
which ``GET /metrics`` serves. A body that is not JSON lines is 415, a missing signature
or a record that is not one is 422, an unknown run or version 404, a server without
``TREADLE_GOLDEN_KEY`` 409: none of them is counted. See ``docs/api.md``.
"""

from __future__ import annotations

from typing import Annotated, Any, Final

from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from treadle.api.context import ApiContext, Context
from treadle.api.errors import CHANGE_RESPONSES, ERROR_RESPONSES
from treadle.api.golden_metrics import ProofMetrics
from treadle.api.security import Operator
from treadle.api.workspaces import run_scope
from treadle.common.access import Principal
from treadle.common.errors import ConfigurationError, ConflictError, ParameterError
from treadle.common.graph import Graph
from treadle.scheduler.service.golden import (
    GoldenFormatError,
    GoldenKeys,
    SignatureResult,
    VerificationResult,
    verify_golden,
)
from treadle.scheduler.service.renderings import load_stored_run
from treadle.scheduler.service.version_replays import (
    RecordedRun,
    recorded_from_golden,
    replay_recorded,
)

__all__ = ["MAX_RECORD_BYTES", "MEDIA_TYPES", "SIGNATURE_HEADER", "include", "router"]

#: The largest record a request may send.
MAX_RECORD_BYTES: Final = 32 * 1024 * 1024
#: The content types of JSON lines a record may be sent as.
MEDIA_TYPES: Final = frozenset(
    {
        "application/jsonl",
        "application/x-ndjson",
        "application/jsonlines",
        "application/x-jsonlines",
    }
)
#: The request header carrying the record's signature (its ``.sig`` file's line).
SIGNATURE_HEADER: Final = "Golden-Signature"
#: What messages call a record sent without a ``name``.
BODY_NAME: Final = "<body>"

router = APIRouter(responses=ERROR_RESPONSES)

_RECORD_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "description": "A golden record as `treadle runs golden` writes it: JSON lines, "
        "byte for byte (`Content-Type: application/jsonl`).",
        "content": {"application/jsonl": {"schema": {"type": "string"}}},
    }
}
_RESPONSES: Final[dict[int | str, dict[str, Any]]] = {
    **CHANGE_RESPONSES,
    409: {**CHANGE_RESPONSES[409], "description": "TREADLE_GOLDEN_KEY is not set here."},
    413: {**CHANGE_RESPONSES[409], "description": "A record over 32 MiB."},
    415: {**CHANGE_RESPONSES[409], "description": "A body that is not JSON lines."},
}

RecordName = Annotated[
    str | None,
    Query(
        alias="name",
        min_length=1,
        max_length=4096,
        description="What messages call the record (its file name); default `<body>`.",
    ),
]
Workflow = Annotated[
    str,
    Query(min_length=1, max_length=255, description="The ref of the workflow to replay against."),
]
Version = Annotated[
    int | None,
    Query(ge=1, le=2**31 - 1, description="Its version (default: the latest)."),
]


async def record_body(request: Request) -> bytes:
    """The record as sent: JSON lines (else 415), at most :data:`MAX_RECORD_BYTES` (413)."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in MEDIA_TYPES:
        raise HTTPException(
            415,
            "send the golden record as JSON lines (Content-Type: application/jsonl), not "
            f"{media or 'a body without a content type'}",
        )
    declared = request.headers.get("content-length", "")
    too_large = f"a golden record is at most {MAX_RECORD_BYTES} bytes"
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_RECORD_BYTES:
        raise HTTPException(413, too_large)
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > MAX_RECORD_BYTES:
            raise HTTPException(413, too_large)
    return bytes(raw)


Record = Annotated[bytes, Depends(record_body)]


class SignatureShown(BaseModel):
    """What checking the record's signature found."""

    result: SignatureResult
    key_id: str | None = Field(description="The key id the signature names, when readable.")


class GoldenVerification(BaseModel):
    """The verdict `treadle golden verify` prints."""

    record: str = Field(description="The record's name, as the messages call it.")
    result: VerificationResult
    message: str = Field(description="The line that says it: `verified: ...`, `mismatch: ...`.")
    differences: list[str] = Field(description="Each line and field the replay differs in.")
    signature: SignatureShown | None


class DivergenceShown(BaseModel):
    """One place the new version decides differently."""

    step: str
    change: str
    what: str
    recorded: Any
    new: Any
    cause: str = Field(description="What `treadle_replay_divergences_total` counts it as.")
    message: str = Field(description="The line `treadle replay` prints for it.")


class StepCounts(BaseModel):
    """How many steps each run took."""

    recorded: int
    new: int


class ReplayShown(BaseModel):
    """The report `treadle replay --json` prints."""

    run: str
    recorded: str = Field(description="The definition the run ran: `REF vN`.")
    against: str = Field(description="The definition it was replayed against: `REF vN`.")
    identical: bool
    divergences: list[DivergenceShown]
    causes: list[str]
    steps: StepCounts


SignatureText = Annotated[
    str,
    Header(
        alias=SIGNATURE_HEADER,
        description="The record's signature: its `.sig` file's line, `hmac-sha256 <key id> "
        "<64 hex digits>`.",
    ),
]


@router.post(
    "/golden/verify",
    summary="Verify a golden record: its signature, then its replay",
    name="verify_golden_record",
    response_model=GoldenVerification,
    responses=_RESPONSES,
    openapi_extra=_RECORD_BODY,
)
def verify(
    principal: Operator,
    context: Context,
    record: Record,
    signature: SignatureText,
    name: RecordName = None,
) -> GoldenVerification:
    """Check the record's signature with this server's `TREADLE_GOLDEN_KEY` (a record
    whose bytes are not the ones signed is `bad_signature`, and nothing is replayed), then
    replay its events against the definition it carries: `mismatch` names each line and
    field that differs, `ok` says what was verified. 200 whatever the verdict; 422 for a
    missing signature or a record that is not one, 409 when no key is set here. Counted
    in `treadle_golden_verifications_total{result}`."""
    keys = _keys(context)
    label = name or BODY_NAME
    sig_name = f"{name}.sig" if name else f"the {SIGNATURE_HEADER} header"
    try:
        verdict = verify_golden(record, label, keys, signature, signature_name=sig_name)
    except GoldenFormatError as exc:
        raise _not_a_record(exc) from None
    ProofMetrics(context.metrics).verified(verdict.result)
    return GoldenVerification.model_validate(verdict.as_json())


@router.post(
    "/golden/replay",
    summary="Replay a golden record against a stored version",
    name="replay_golden_record",
    response_model=ReplayShown,
    responses=_RESPONSES,
    openapi_extra=_RECORD_BODY,
)
def replay_record(
    principal: Operator,
    context: Context,
    record: Record,
    *,
    workflow: Workflow,
    version: Version = None,
    name: RecordName = None,
) -> ReplayShown:
    """Feed the run the record holds (its events, on the definition it carries; its
    signature is not checked here) to `workflow` at `version` (the latest without it),
    as `treadle replay FILE --against REF@N` does, and report each step where the two
    decide differently. 422 for a record that is not one, 404 for an unknown workflow or
    version. A replay that diverges counts once per cause in
    `treadle_replay_divergences_total{cause}`."""
    try:
        recorded = recorded_from_golden(record, name or BODY_NAME)
    except GoldenFormatError as exc:
        raise _not_a_record(exc) from None
    return _replay(context, principal, recorded, workflow, version)


@router.post(
    "/runs/{run_id}/replay",
    summary="Replay a run against a stored version",
    name="replay_run",
    response_model=ReplayShown,
    responses=_RESPONSES,
)
def replay_run(
    run_id: Annotated[str, Path(description="The run's id.")],
    principal: Operator,
    context: Context,
    workflow: Workflow,
    version: Version = None,
) -> ReplayShown:
    """Feed the run's recorded results to `workflow` at `version` (the latest without
    it), as `treadle replay RUN_ID --against REF@N` does, and report each step where the
    two decide differently. 404 for an unknown run (or another workspace's), workflow or
    version. A replay that diverges counts once per cause in
    `treadle_replay_divergences_total{cause}`."""
    with context.reading() as uow:
        run_scope(principal).check(uow, run_id)
    with context.reaching():
        stored = load_stored_run(context.store, run_id, context.definitions)
    return _replay(context, principal, RecordedRun.of(stored), workflow, version)


def _replay(
    context: ApiContext,
    principal: Principal,
    recorded: RecordedRun,
    workflow: str,
    version: int | None,
) -> ReplayShown:
    label, graph = _target(context, principal, workflow, version)
    replay = replay_recorded(recorded, label, graph)
    ProofMetrics(context.metrics).replayed(replay.report)
    return ReplayShown.model_validate(replay.document())


def _target(
    context: ApiContext, principal: Principal, workflow: str, version: int | None
) -> tuple[str, Graph]:
    """The stored version to replay against, as the token's workspace sees the ref."""
    with context.reading() as uow:
        pinned = context.definitions.pinned(workflow, version, uow, workspace=principal.workspace)
    return f"{workflow} v{pinned.version}", pinned.graph


def _keys(context: ApiContext) -> GoldenKeys:
    secret = context.settings.golden_key
    if secret is None:
        raise ConflictError(
            "TREADLE_GOLDEN_KEY is not set where the API runs: it cannot check golden "
            "records' signatures"
        )
    try:
        return GoldenKeys.parse(secret.get_secret_value())
    except ConfigurationError as exc:
        raise ConflictError(str(exc)) from None


def _not_a_record(exc: GoldenFormatError) -> ParameterError:
    return ParameterError([str(exc)], subject="golden record")


def include(app: FastAPI) -> None:
    """Serve the routes under ``/api/v1``; start the counters of the app's registry."""
    context = app.state.context
    assert isinstance(context, ApiContext)
    ProofMetrics(context.metrics)
    app.include_router(
        router, prefix="/api/v1", tags=["golden records"], generate_unique_id_function=_op_id
    )


def _op_id(route: APIRoute) -> str:
    return route.name
