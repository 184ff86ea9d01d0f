"""HTML forms built from a JSON Schema, and the JSON value a submitted form stands for.

An inquiry's answer and a run's parameters are JSON checked against a schema. The UI
builds a form when the schema is simple enough to map field by field: an object whose
properties are each a string, number, integer or boolean, or an ``enum`` of such values,
with ``required`` names. Anything else (nested objects, arrays, ``oneOf``...) gets one
JSON text area instead. Either way the value goes to the same service as the JSON API's
(``answer_inquiry_in``, ``start_workflow``), which checks it against the schema and
names every problem; this module only reports what it cannot read (a number that is not
one, a text area that is not JSON), as a :class:`~treadle.common.errors.ParameterError`
naming the field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from treadle.common.errors import ParameterError

__all__ = ["JSON_FIELD", "FormField", "form_fields", "form_value", "parameters_schema"]

#: The name of the text area used when the schema is not a simple object.
JSON_FIELD: Final = "json"
#: Every field's name in the form is this prefix and the property's name.
PREFIX: Final = "f."
_KINDS: Final = {"string": "text", "number": "number", "integer": "integer", "boolean": "checkbox"}


@dataclass(frozen=True)
class FormField:
    """One input: the property it fills, its kind, and what the schema says of it."""

    name: str
    kind: str  # text | number | integer | checkbox | select
    required: bool
    label: str
    description: str | None = None
    default: Any = None
    options: tuple[Any, ...] = field(default_factory=tuple)

    @property
    def input_name(self) -> str:
        return PREFIX + self.name

    @property
    def choices(self) -> list[tuple[str, str]]:
        """(value sent, text shown) of each option of a select: its position and JSON."""
        return [(str(index), json.dumps(option)) for index, option in enumerate(self.options)]


def _field(name: str, prop: Mapping[str, Any], required: bool) -> FormField | None:
    label = str(prop.get("title") or name)
    description = prop.get("description")
    default = prop.get("default")
    enum = prop.get("enum")
    if (
        isinstance(enum, list)
        and enum
        and all(isinstance(v, str | int | float | bool) or v is None for v in enum)
    ):
        return FormField(name, "select", required, label, description, default, tuple(enum))
    kind = _KINDS.get(str(prop.get("type")))
    if kind is None or set(prop) - {
        "type",
        "title",
        "description",
        "default",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "pattern",
        "format",
    }:
        return None
    return FormField(name, kind, required, label, description, default)


def form_fields(schema: Any) -> list[FormField] | None:
    """The form for ``schema``; None when it takes the JSON text area."""
    if not isinstance(schema, Mapping) or schema.get("type") != "object":
        return None
    properties = schema.get("properties")
    if not isinstance(properties, Mapping) or not properties:
        return None
    required = schema.get("required") or []
    fields = []
    for name, prop in properties.items():
        if not isinstance(prop, Mapping):
            return None
        made = _field(str(name), prop, name in required)
        if made is None:
            return None
        fields.append(made)
    return fields


def _number(text: str, spec: FormField) -> int | float:
    try:
        return int(text) if spec.kind == "integer" else float(text)
    except ValueError:
        kind = "a whole number" if spec.kind == "integer" else "a number"
        raise ParameterError([f"'{spec.name}': {text!r} is not {kind}"]) from None


def form_value(fields: Sequence[FormField] | None, form: Mapping[str, str]) -> Any:
    """The JSON value the submitted ``form`` stands for (see the module docstring)."""
    if fields is None:
        text = form.get(JSON_FIELD, "").strip()
        try:
            return json.loads(text) if text else None
        except json.JSONDecodeError as exc:
            raise ParameterError(
                [
                    f"the JSON text is not valid JSON (line {exc.lineno}, column {exc.colno}): "
                    f"{exc.msg}"
                ]
            ) from None
    value: dict[str, Any] = {}
    for spec in fields:
        raw = form.get(spec.input_name)
        if spec.kind == "checkbox":
            value[spec.name] = raw is not None
            continue
        if raw is None or raw == "":
            continue  # left out: the schema says whether it is required
        if spec.kind == "select":
            try:
                value[spec.name] = spec.options[int(raw)]
            except (ValueError, IndexError):
                raise ParameterError(
                    [f"'{spec.name}': {raw!r} is not one of the choices"]
                ) from None
        elif spec.kind in ("number", "integer"):
            value[spec.name] = _number(raw, spec)
        else:
            value[spec.name] = raw
    return value


def parameters_schema(parameters: Sequence[Any]) -> dict[str, Any]:
    """A workflow's declared parameters (``ParameterSpec``) as one object schema."""
    properties: dict[str, Any] = {}
    required = []
    for parameter in parameters:
        prop = dict(parameter.schema_)
        if parameter.description:
            prop["description"] = parameter.description
        if parameter.has_default and not parameter.secret:
            prop["default"] = parameter.default
        properties[parameter.name] = prop
        if parameter.required and not parameter.has_default:
            required.append(parameter.name)
    return {"type": "object", "properties": properties, "required": required}
