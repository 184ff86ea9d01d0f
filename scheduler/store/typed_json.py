"""JSON encoders and decoders derived from a type annotation, for the ``runs.core`` column.

The codec builds the ``core`` column from the fields of ``RunState`` without listing them:
each field's annotation (``Mapping[int, tuple[Failure, ...]]``, ``tuple[str, ...]``, ``int``)
says how its value becomes JSON and comes back. This module turns an annotation into that
pair of functions, once, so the hot path only calls plain closures.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from types import UnionType
from typing import Any, Union

Encode = Callable[[Any], Any]
Decode = Callable[[Any], Any]
#: Encoder and decoder of each record type (a dataclass the caller knows how to write).
Records = Mapping[Any, tuple[Encode, Decode]]

_SCALARS: dict[Any, Decode] = {int: int, str: str, float: float, bool: bool}


def as_is(value: Any) -> Any:
    """The encoder of a value JSON holds as it is."""
    return value


def json_codec(hint: Any, records: Records) -> tuple[Encode, Decode]:
    """How a value of type ``hint`` is written to JSON and read back.

    Scalars stay as they are (and are read back with their type), enums by value; records
    use their own pair from ``records``, other dataclasses become objects of their fields
    (a key missing reads as the field's default); tuples become lists, ``X | None`` stays
    null, mappings become objects: JSON object keys are text, so ``int`` keys are written
    as text and read back as ``int``. Raises ``TypeError`` for anything else.
    """
    if hint in _SCALARS:
        return as_is, _SCALARS[hint]
    if hint in records:
        return records[hint]
    if isinstance(hint, type) and issubclass(hint, Enum):
        return _enum_value, hint
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _dataclass(hint, records)
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
        return _sequence(*json_codec(args[0], records))
    if origin in (Mapping, dict) and args[0] in (str, int):
        return _mapping(args[0] is int, *json_codec(args[1], records))
    if origin in (Union, UnionType) and len(args) == 2 and type(None) in args:
        inner = args[0] if args[1] is type(None) else args[1]
        return _optional(*json_codec(inner, records))
    raise TypeError(f"no JSON encoding for {hint!r}")


def _enum_value(member: Enum) -> Any:
    return member.value


def _dataclass(cls: type[Any], records: Records) -> tuple[Encode, Decode]:
    hints = typing.get_type_hints(cls)
    parts = [(f.name, *json_codec(hints[f.name], records)) for f in dataclasses.fields(cls)]

    def encode(value: Any) -> dict[str, Any]:
        return {name: field_encode(getattr(value, name)) for name, field_encode, _ in parts}

    def decode(data: Mapping[str, Any]) -> Any:
        return cls(
            **{name: field_decode(data[name]) for name, _, field_decode in parts if name in data}
        )

    return encode, decode


def _sequence(item_encode: Encode, item_decode: Decode) -> tuple[Encode, Decode]:
    def encode(values: Iterable[Any]) -> list[Any]:
        if item_encode is as_is:
            return list(values)
        return [item_encode(value) for value in values]

    def decode(values: Iterable[Any]) -> tuple[Any, ...]:
        return tuple(item_decode(value) for value in values)

    return encode, decode


def _mapping(int_keys: bool, value_encode: Encode, value_decode: Decode) -> tuple[Encode, Decode]:
    key_decode: Decode = int if int_keys else as_is

    def encode(mapping: Mapping[Any, Any]) -> dict[str, Any]:
        if int_keys:
            return {str(key): value_encode(value) for key, value in mapping.items()}
        if value_encode is as_is:
            return dict(mapping)
        return {key: value_encode(value) for key, value in mapping.items()}

    def decode(data: Mapping[str, Any]) -> dict[Any, Any]:
        return {key_decode(key): value_decode(value) for key, value in data.items()}

    return encode, decode


def _optional(encode: Encode, decode: Decode) -> tuple[Encode, Decode]:
    def encode_optional(value: Any) -> Any:
        return None if value is None else encode(value)

    def decode_optional(value: Any) -> Any:
        return None if value is None else decode(value)

    return encode_optional, decode_optional
