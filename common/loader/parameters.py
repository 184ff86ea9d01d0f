"""Parameter declarations (workflow parameters, action inputs, pack configuration).

Two spellings are accepted and give the same :class:`ParameterSpec` values:

* the flat style, one entry per parameter with JSON Schema keywords plus ``required``,
  ``secret``, ``default`` and ``description``::

      message: {type: string, required: true}

* a full JSON Schema object, ``{type: object, properties: {...}, required: [...]}``.

Each parameter's own schema is checked (``type: strnig`` is reported at its line).
Output schemas may likewise be a JSON Schema or a flat map of properties.
"""

from __future__ import annotations

from typing import Any, Final

from treadle.common.loader.reader import Reader, suggestion
from treadle.common.params import check_parameter_schema
from treadle.common.source import Path
from treadle.common.spec import ParameterSpec

#: The types JSON Schema knows.
JSON_TYPES: Final = ("string", "integer", "number", "boolean", "object", "array", "null")
#: Flat-style keys that are fields of ParameterSpec rather than JSON Schema keywords.
_EXTRAS = ("required", "secret", "default", "description")


def read_parameters(reader: Reader, value: Any, path: Path) -> tuple[ParameterSpec, ...]:
    """The parameters declared at ``path`` (flat style or full JSON Schema)."""
    declared = reader.mapping(value, path, "'parameters'")
    if not declared:
        return ()
    if _is_object_schema(declared):
        return _from_object_schema(reader, declared, path)
    params: list[ParameterSpec] = []
    for name, entry in declared.items():
        param = _flat_parameter(reader, name, entry, (*path, name))
        if param is not None:
            params.append(param)
    return tuple(params)


def read_output_schema(reader: Reader, value: Any, path: Path) -> dict[str, Any] | None:
    """A JSON Schema, or a flat map of properties turned into an object schema."""
    schema = reader.mapping(value, path, f"'{path[-1]}'")
    if not schema:
        return None
    if isinstance(schema.get("type"), str | list) or "properties" in schema or "$ref" in schema:
        return schema
    if all(isinstance(entry, dict) for entry in schema.values()):
        required = [name for name, entry in schema.items() if entry.get("required") is True]
        properties = {
            name: {k: v for k, v in entry.items() if not (k == "required" and isinstance(v, bool))}
            for name, entry in schema.items()
        }
        result: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            result["required"] = required
        return result
    return schema


def _is_object_schema(declared: dict[Any, Any]) -> bool:
    return declared.get("type") == "object" and isinstance(declared.get("properties"), dict)


def _flat_parameter(reader: Reader, name: Any, entry: Any, path: Path) -> ParameterSpec | None:
    if not isinstance(name, str) or not name:
        reader.error(path, f"parameter name {name!r} must be text")
        return None
    if entry is None:
        entry = {}
    if not isinstance(entry, dict):
        reader.error(
            path,
            f"parameter '{name}' must be a mapping of schema keywords (e.g. type: string), "
            f"not {entry!r}",
        )
        return None
    schema = {k: v for k, v in entry.items() if k not in _EXTRAS}
    required_value = entry.get("required", False)
    if isinstance(required_value, list):  # JSON Schema's own 'required' of an object value
        schema["required"] = required_value
        required_value = False
    return _finish(reader, name, entry, schema, path, required=required_value)


def _from_object_schema(
    reader: Reader, declared: dict[Any, Any], path: Path
) -> tuple[ParameterSpec, ...]:
    reader.check_fields(
        declared,
        path,
        "the parameters schema",
        (
            "type",
            "properties",
            "required",
            "additionalProperties",
            "$schema",
            "title",
            "description",
        ),
    )
    properties: dict[Any, Any] = declared["properties"]
    required_names = declared.get("required", [])
    if not isinstance(required_names, list) or not all(isinstance(n, str) for n in required_names):
        reader.error((*path, "required"), "'required' must be a list of parameter names")
        required_names = []
    for index, required_name in enumerate(required_names):
        if required_name not in properties:
            reader.error(
                (*path, "required", index),
                f"'{required_name}' is listed as required but is not a declared property",
            )
    params: list[ParameterSpec] = []
    for name, entry in properties.items():
        prop_path = (*path, "properties", name)
        if not isinstance(name, str) or not isinstance(entry, dict):
            reader.error(prop_path, f"property {name!r} must be a mapping of schema keywords")
            continue
        schema = {k: v for k, v in entry.items() if k not in ("secret", "default", "description")}
        param = _finish(reader, name, entry, schema, prop_path, required=name in required_names)
        if param is not None:
            params.append(param)
    return tuple(params)


def _finish(
    reader: Reader,
    name: str,
    entry: dict[Any, Any],
    schema: dict[str, Any],
    path: Path,
    *,
    required: Any,
) -> ParameterSpec | None:
    required_flag = reader.boolean(
        required, (*path, "required"), f"'required' of parameter '{name}'"
    )
    secret = reader.boolean(
        entry.get("secret"), (*path, "secret"), f"'secret' of parameter '{name}'"
    )
    description = entry.get("description")
    if description is not None and not isinstance(description, str):
        description = str(description)
    param = ParameterSpec(
        name=name,
        schema_=schema,
        required=bool(required_flag),
        secret=bool(secret),
        has_default="default" in entry,
        default=entry.get("default"),
        description=description,
    )
    declared_type = schema.get("type")
    if isinstance(declared_type, str) and declared_type not in JSON_TYPES:
        reader.error(
            (*path, "type"),
            f"parameter '{name}': unknown type '{declared_type}'"
            + (suggestion(declared_type, JSON_TYPES) or f" (use one of {', '.join(JSON_TYPES)})"),
            at_value=True,
        )
        return param
    for problem in check_parameter_schema(param):
        reader.error(path, problem)
    return param
