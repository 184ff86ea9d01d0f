"""What the workflows routes read from a request and how they answer, over HTTP.

* A definition comes as the raw body: YAML (``Content-Type: application/yaml``,
  ``application/x-yaml``, ``text/yaml``) or the same definition as a JSON object
  (``application/json``). :func:`definition_body` reads it (at most
  :data:`MAX_DEFINITION_BYTES`, else 413; another content type is 415; text that is not
  UTF-8 is 400, and JSON that does not parse is 400 ``invalid_json`` as on every route);
  the loader reads it as a file named ``<body>``, so every problem names its line and
  column in what the client sent.
* A client asks for the workflows/v1 shapes with ``?format=v1`` or by accepting
  :data:`V1_MEDIA_TYPE` (:data:`WantsV1`); ``?format=treadle`` (the default) wins over
  the header.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal

from fastapi import Depends, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from treadle.clientlib.definition_admin import read_json_definition, read_yaml_definition
from treadle.common.source import Issue
from treadle.common.spec import WorkflowSpec

__all__ = [
    "DEFINITION_BODY",
    "MAX_DEFINITION_BYTES",
    "V1_MEDIA_TYPE",
    "DefinitionBody",
    "WantsV1",
    "definition_body",
    "v1_response",
]

#: The largest definition a request may send.
MAX_DEFINITION_BYTES: Final = 1024 * 1024
#: The media type of the workflows/v1 shapes.
V1_MEDIA_TYPE: Final = "application/vnd.treadle.workflows-v1+json"

_YAML_TYPES: Final = frozenset(
    {"application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml"}
)
_JSON_TYPES: Final = frozenset({"application/json"})

#: The request body a route taking a definition declares in the OpenAPI document.
DEFINITION_BODY: Final[dict[str, Any]] = {
    "requestBody": {
        "required": True,
        "description": "A workflow definition: YAML, or the same definition as a JSON object.",
        "content": {
            "application/yaml": {"schema": {"type": "string"}},
            "application/json": {"schema": {"type": "object"}},
        },
    }
}


@dataclass(frozen=True)
class DefinitionBody:
    """A definition as sent: its text and, for JSON, the parsed object."""

    text: str
    is_json: bool
    data: Any = None

    def read(self, *, default_ref: str | None = None) -> tuple[WorkflowSpec | None, list[Issue]]:
        """The workflow and every problem the loader found (never raises)."""
        if self.is_json:
            return read_json_definition(self.text, self.data, default_ref=default_ref)
        return read_yaml_definition(self.text, default_ref=default_ref)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


async def definition_body(request: Request) -> DefinitionBody:
    """The definition the request sends (see the module docstring)."""
    media = _media_type(request)
    is_json = media in _JSON_TYPES or media.endswith("+json")
    if not is_json and media not in _YAML_TYPES:
        raise HTTPException(
            415,
            "send the definition as YAML (Content-Type: application/yaml) or as JSON "
            f"(application/json), not {media or 'a body without a content type'}",
        )
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > MAX_DEFINITION_BYTES:
        raise HTTPException(413, f"a definition is at most {MAX_DEFINITION_BYTES} bytes")
    raw = bytearray()
    async for chunk in request.stream():
        raw.extend(chunk)
        if len(raw) > MAX_DEFINITION_BYTES:
            raise HTTPException(413, f"a definition is at most {MAX_DEFINITION_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise HTTPException(400, "the definition is not UTF-8 text") from None
    if not is_json:
        return DefinitionBody(text, is_json=False)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno} column {exc.colno}"
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", exc.pos),
                    "msg": f"JSON decode error at {where}: {exc.msg}",
                    "input": {},
                }
            ]
        ) from None
    return DefinitionBody(text, is_json=True, data=data)


def _wants_v1(
    request: Request,
    shape: Annotated[
        Literal["treadle", "v1"] | None,
        Query(
            alias="format",
            description="`v1` for the workflows/v1 shapes (or accept "
            f"`{V1_MEDIA_TYPE}`); `treadle` (the default) for Treadle's.",
        ),
    ] = None,
) -> bool:
    if shape is not None:
        return shape == "v1"
    return V1_MEDIA_TYPE in request.headers.get("accept", "")


#: A route parameter: whether the client asked for the workflows/v1 shapes.
WantsV1 = Annotated[bool, Depends(_wants_v1)]


def v1_response(content: Any, status_code: int = 200) -> JSONResponse:
    """An answer in a workflows/v1 shape."""
    return JSONResponse(content, status_code=status_code, media_type=V1_MEDIA_TYPE)
