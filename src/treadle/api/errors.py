"""One error shape for every answer that is not a success, whatever went wrong.

Every non-2xx response of the API is::

    {"error": {"type": "not_found", "message": "run r-1 not found", "details": null}}

``type`` is a stable machine-readable name, ``message`` a sentence for people, ``details``
whatever helps further (for a request that does not validate: each problem with its
location, e.g. ``["query", "limit"]``). Treadle's own errors map to statuses here, in one
table, so a route only raises what went wrong; FastAPI's validation errors, Starlette's 404
and 405, and anything unexpected (500, logged) are reshaped the same way.
:data:`ERROR_RESPONSES` documents the shape in the OpenAPI document of the routes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from treadle.common.errors import (
    ConfigurationError,
    ConflictError,
    DefinitionError,
    Forbidden,
    IllegalTransition,
    LimitExceeded,
    NotFound,
    ParameterError,
    ServiceUnavailable,
    TooManyRequests,
    TreadleError,
    Unauthenticated,
)
from treadle.common.sandbox_report import SandboxRefusal

__all__ = [
    "CHANGE_RESPONSES",
    "ERROR_RESPONSES",
    "ErrorBody",
    "ErrorResponse",
    "error_response",
    "install_error_handlers",
]

log = logging.getLogger("treadle.api")


class ErrorBody(BaseModel):
    """What went wrong: a stable ``type``, a message for people, and optional details."""

    type: str = Field(description="A stable name of the kind of error, e.g. `not_found`.")
    message: str = Field(description="What went wrong, in a sentence.")
    details: Any = Field(
        default=None,
        description="More about it: for a request that does not validate, each problem "
        "with its location (`loc`), message and type.",
    )


class ErrorResponse(BaseModel):
    """The body of every response that is not a success."""

    error: ErrorBody


def _documented(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


#: The error responses every authenticated route declares in the OpenAPI document.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: _documented("No token, or a token that is invalid, expired or revoked."),
    404: _documented("No such run (or task, or route)."),
    422: _documented("The request does not validate: `details` names each field and why."),
    429: _documented("The token made too many requests this minute; see `Retry-After`."),
    503: _documented("The database cannot be reached."),
}

#: What a route that changes something declares besides :data:`ERROR_RESPONSES`.
CHANGE_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _documented("The body is not JSON."),
    403: _documented("The token's role does not allow this."),
    409: _documented("The request does not fit the current state; nothing was changed."),
}

#: Treadle's errors: status and type, most specific first.
_TREADLE_ERRORS: tuple[tuple[type[TreadleError], int, str], ...] = (
    (Unauthenticated, 401, "unauthenticated"),
    (Forbidden, 403, "forbidden"),
    (TooManyRequests, 429, "too_many_requests"),
    (NotFound, 404, "not_found"),
    (ConflictError, 409, "conflict"),
    (IllegalTransition, 409, "conflict"),
    (SandboxRefusal, 422, "sandbox_violation"),
    (ParameterError, 422, "invalid_parameters"),
    (DefinitionError, 422, "invalid_definition"),
    (LimitExceeded, 422, "limit_exceeded"),
    (ServiceUnavailable, 503, "service_unavailable"),
    # the database has no (or an older) Treadle schema: not ready until it is upgraded
    (ConfigurationError, 503, "service_unavailable"),
)

#: Types of Starlette's and FastAPI's HTTP errors, by status.
_HTTP_TYPES: Mapping[int, str] = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "request_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    503: "service_unavailable",
}


def error_response(
    status: int,
    type_: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """A response with the error shape."""
    body = ErrorResponse(error=ErrorBody(type=type_, message=message, details=details))
    return JSONResponse(
        jsonable_encoder(body), status_code=status, headers=dict(headers or {}) or None
    )


def _treadle_details(exc: TreadleError) -> Any:
    if isinstance(exc, SandboxRefusal):  # the report: {valid, violations, warnings}
        return exc.report.as_dict()
    if isinstance(exc, ParameterError):
        return {"subject": exc.subject, "problems": list(exc.problems)}
    if isinstance(exc, DefinitionError):
        return [
            {
                "file": issue.loc.file,
                "line": issue.loc.line,
                "column": issue.loc.col,
                "message": issue.message,
            }
            for issue in exc.issues
        ]
    return None


def _headers(exc: TreadleError) -> dict[str, str] | None:
    """What the status asks for: how to authenticate (401), when to retry (429)."""
    if isinstance(exc, Unauthenticated):
        return {"WWW-Authenticate": "Bearer"}
    if isinstance(exc, TooManyRequests):
        return {"Retry-After": str(exc.retry_after)}
    return None


def status_of(exc: TreadleError) -> tuple[int, str] | None:
    """The HTTP status and error type the API answers ``exc`` with; None for a Treadle
    error with no status of its own (an expression error...), which is a bug here."""
    for kind, status, type_ in _TREADLE_ERRORS:
        if isinstance(exc, kind):
            return status, type_
    return None


def _on_treadle_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, TreadleError)
    found = status_of(exc)
    if found is None:
        return _on_unexpected(_request, exc)
    status, type_ = found
    return error_response(status, type_, str(exc), _treadle_details(exc), _headers(exc))


def _where(loc: Sequence[Any]) -> str:
    """``query parameter 'limit'``, ``body field 'reason'``, ``the body``..."""
    if not loc:
        return "the request"
    source, *path = loc
    name = ".".join(str(part) for part in path)
    if source == "body":
        return f"body field '{name}'" if name else "the body"
    if source in ("query", "path", "header", "cookie"):
        return f"{source} parameter '{name}'"
    return ".".join(str(part) for part in loc)


def _on_validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [
        {"loc": list(error.get("loc", ())), "message": error.get("msg", ""), "type": error["type"]}
        for error in exc.errors()
    ]
    if any(problem["type"] == "json_invalid" for problem in problems):
        return error_response(
            400, "invalid_json", "the request body is not valid JSON", details=problems
        )
    message = "; ".join(f"{_where(p['loc'])}: {p['message']}" for p in problems)
    return error_response(422, "validation_error", message or "invalid request", problems)


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "error"


def _on_http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    type_ = _HTTP_TYPES.get(status, "http_error")
    phrase = _phrase(status)
    message = exc.detail if isinstance(exc.detail, str) and exc.detail else phrase
    if status == 404 and message == phrase:
        message = f"no route {_request.method} {_request.url.path}"
    elif status == 405:
        message = f"{_request.method} is not allowed on {_request.url.path}"
    return error_response(status, type_, message, headers=exc.headers)


def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("%s %s failed unexpectedly", request.method, request.url.path, exc_info=exc)
    return error_response(
        500, "internal_error", "the server failed to handle the request; see its log"
    )


def install_error_handlers(app: FastAPI) -> None:
    """Make every error ``app`` answers take the one shape."""
    app.add_exception_handler(TreadleError, _on_treadle_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
