"""Parameters in the flat schema style: JSON Schema per parameter, defaults, validation.

Workflow parameters, action inputs and pack configuration all use the same style::

    message: {type: string, required: true}
    count:   {type: integer, default: 3, minimum: 1}

:func:`resolve_parameters` applies defaults, fills declared-but-absent optional values with
``None`` (so templates see ``null`` rather than an error), rejects unknown names, and raises
:class:`ParameterError` listing every problem with the parameter's name.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import jsonschema
from jsonschema.validators import Draft202012Validator

from treadle.common.errors import ParameterError
from treadle.common.spec import ParameterSpec


def parameters_json_schema(params: Sequence[ParameterSpec]) -> dict[str, Any]:
    """The JSON Schema (an object schema) equivalent to ``params``."""
    schema: dict[str, Any] = {
        "type": "object",
        "properties": {p.name: dict(p.schema_) for p in params},
        "additionalProperties": False,
    }
    required = [p.name for p in params if p.required]
    if required:
        schema["required"] = required
    return schema


def secret_names(params: Sequence[ParameterSpec]) -> tuple[str, ...]:
    return tuple(p.name for p in params if p.secret)


def resolve_parameters(
    params: Sequence[ParameterSpec],
    given: Mapping[str, Any],
    *,
    subject: str = "parameters",
    allow_unknown: bool = False,
) -> dict[str, Any]:
    """Validate ``given`` against ``params`` and return it with defaults applied.

    Raises :class:`ParameterError` naming each offending parameter; nothing is returned
    partially.
    """
    declared = {p.name: p for p in params}
    problems: list[str] = []
    resolved: dict[str, Any] = {}
    for name, value in given.items():
        if name not in declared and not allow_unknown:
            problems.append(f"unknown parameter '{name}'" + _known(declared))
        resolved[name] = value
    for p in params:
        if p.name in resolved:
            continue
        if p.has_default:
            resolved[p.name] = copy.deepcopy(p.default)
        elif p.required:
            problems.append(f"missing required parameter '{p.name}'")
        else:
            resolved[p.name] = None
    for p in params:
        value = resolved.get(p.name)
        if value is None and not p.required:
            continue  # optional and absent (or explicitly null): nothing to check
        if p.name not in resolved:
            continue
        for error in _validator_for(p.schema_).iter_errors(value):
            where = "".join(f"[{part!r}]" for part in error.absolute_path)
            problems.append(f"parameter '{p.name}{where}': {error.message}")
    if problems:
        raise ParameterError(problems, subject=subject)
    return resolved


def check_parameter_schema(param: ParameterSpec) -> list[str]:
    """Problems with the parameter's own schema (e.g. ``type: strnig``), as messages."""
    try:
        Draft202012Validator.check_schema(param.schema_)
    except jsonschema.SchemaError as exc:
        return [f"parameter '{param.name}': invalid schema: {exc.message}"]
    if param.has_default and param.default is not None:
        errors = list(_validator_for(param.schema_).iter_errors(param.default))
        if errors:
            return [
                f"parameter '{param.name}': default {param.default!r} is invalid: "
                f"{errors[0].message}"
            ]
    return []


def _known(declared: Mapping[str, ParameterSpec]) -> str:
    if not declared:
        return " (this takes no parameters)"
    return " (known: " + ", ".join(sorted(declared)) + ")"


def _validator_for(schema: Mapping[str, Any]) -> Draft202012Validator:
    return _validator(json.dumps(schema, sort_keys=True, default=repr))


@lru_cache(maxsize=1024)
def _validator(schema_json: str) -> Draft202012Validator:
    return Draft202012Validator(json.loads(schema_json))
