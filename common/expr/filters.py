"""The filters and helper functions Treadle adds to Jinja's own.

Workflow authors come from Tera (Attune), StackStorm and Ansible; these are the data filters
they reach for most. Each function's first docstring line is what ``docs/language.md`` shows
for it. Filters that could build a huge text or list check its size before building it
(see :mod:`treadle.common.expr.guards`). A missing value (``None`` or undefined) counts as
empty wherever that is the natural reading (``length``, ``keys``, ``flatten`` ...).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, ValuesView
from typing import Any, Final

from jinja2 import Environment, Undefined, pass_environment, pass_eval_context
from jinja2.filters import do_batch, do_center, do_format, do_indent, sync_do_join, sync_do_slice
from jinja2.nodes import EvalContext

from treadle.common.expr.guards import (
    check_items,
    check_join,
    check_printf,
    check_text_size,
)

DEFAULT_MAX_CHARS: Final = 10 * 1024 * 1024


def _max_chars(environment: Environment) -> int:
    limit = getattr(environment, "max_output_bytes", DEFAULT_MAX_CHARS)
    return int(limit)


def _missing(value: Any) -> bool:
    return value is None or isinstance(value, Undefined)


def json_default(value: Any) -> Any:
    """Make template values JSON-serialisable: mappings, undefined, sets and iterators."""
    if isinstance(value, Undefined):
        return None
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset, range, Iterator, KeysView, ValuesView, ItemsView)):
        return list(value)
    raise TypeError(f"a {type(value).__name__} value cannot be converted to JSON")


def dump_json(value: Any, indent: int | None = None) -> str:
    """Compact JSON in insertion order, non-ASCII kept as is (shared with mixed-text output)."""
    return json.dumps(
        value,
        ensure_ascii=False,
        indent=indent,
        separators=(",", ":") if indent is None else None,
        default=json_default,
    )


def length(value: Any) -> int:
    """Number of items in a list or mapping, or characters in a text; 0 for a missing value."""
    if _missing(value):
        return 0
    return len(value)


def from_json(value: Any) -> Any:
    """Parse a JSON text into data (a missing value stays missing)."""
    if _missing(value):
        return None
    if not isinstance(value, (str, bytes, bytearray)):
        raise TypeError(f"from_json expects JSON text, got a {type(value).__name__}")
    try:
        return json.loads(value)
    except json.JSONDecodeError as exc:
        raise ValueError(f"from_json: invalid JSON ({exc})") from None


@pass_environment
def to_json(environment: Environment, value: Any, indent: int | None = None) -> str:
    """Serialise data as compact JSON in its own key order (``indent=2`` to pretty-print)."""
    text = dump_json(value, indent)
    check_text_size(len(text), _max_chars(environment), "the JSON text")
    return text


def slice_(
    value: Any,
    slices: int | None = None,
    fill_with: Any = None,
    *,
    start: int | None = None,
    end: int | None = None,
) -> Any:
    """``slice(start=1, end=3)`` cuts a list or text; ``slice(3)`` splits it into 3 lists."""
    if slices is not None:
        if start is not None or end is not None:
            raise TypeError(
                "slice takes either a number of groups, slice(3), or start=/end=, not both"
            )
        if not isinstance(slices, int) or slices < 1:
            raise ValueError(f"slice(n) needs a whole number n of at least 1, got {slices!r}")
        check_items(slices, "slice(n)")
        return list(sync_do_slice([] if _missing(value) else value, slices, fill_with))
    if _missing(value):
        return []
    if isinstance(value, str):
        return value[start:end]
    return list(value)[start:end]


def batch(value: Any, linecount: int, fill_with: Any = None) -> list[list[Any]]:
    """Split a list into lists of ``linecount`` items (the last one padded with ``fill_with``)."""
    if fill_with is not None:
        check_items(linecount, "batch(n, fill_with)")
    return list(do_batch([] if _missing(value) else value, linecount, fill_with))


@pass_eval_context
def join(eval_ctx: EvalContext, value: Any, d: str = "", attribute: str | int | None = None) -> str:
    """Join the items of a list into one text, with ``d`` between them."""
    environment = eval_ctx.environment
    items = [] if _missing(value) else list(value)
    if attribute is None:
        check_join(str(d), items, _max_chars(environment))
    text = sync_do_join(eval_ctx, items, d, attribute)
    check_text_size(len(text), _max_chars(environment), "the joined text")
    return text


@pass_environment
def center(environment: Environment, value: Any, width: int = 80) -> str:
    """Center a text in a field of ``width`` characters."""
    check_text_size(width, _max_chars(environment), "the centered text")
    return do_center(value, width)


@pass_environment
def indent(
    environment: Environment,
    value: Any,
    width: int | str = 4,
    first: bool = False,
    blank: bool = False,
) -> str:
    """Indent every line after the first by ``width`` spaces (or by the text ``width``)."""
    text = str(value)
    pad = len(width) if isinstance(width, str) else int(width)
    size = len(text) + (text.count("\n") + 1) * pad
    check_text_size(size, _max_chars(environment), "the indented text")
    return do_indent(text, width, first, blank)


@pass_environment
def format_(environment: Environment, value: Any, *args: Any, **kwargs: Any) -> str:
    """printf-style formatting: ``"%s has %d items" | format(name, n)``."""
    check_printf(str(value), _max_chars(environment))
    return do_format(value, *args, **kwargs)


def _regex_flags(ignorecase: bool, multiline: bool) -> int:
    return (re.IGNORECASE if ignorecase else 0) | (re.MULTILINE if multiline else 0)


def _text(value: Any, filter_name: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return str(value)
    raise TypeError(f"{filter_name} expects text, got a {type(value).__name__}")


@pass_environment
def regex_replace(  # noqa: PLR0917 (Ansible's positional signature)
    environment: Environment,
    value: Any,
    pattern: str,
    replacement: str = "",
    ignorecase: bool = False,
    multiline: bool = False,
    count: int = 0,
) -> str:
    """Replace every match of a regular expression (``\\1`` refers to a group)."""
    if _missing(value):
        return ""
    text = _text(value, "regex_replace")
    flags = _regex_flags(ignorecase, multiline)
    result = re.sub(pattern, replacement, text, count=count, flags=flags)
    check_text_size(len(result), _max_chars(environment), "the result of regex_replace")
    return result


def regex_search(
    value: Any, pattern: str, ignorecase: bool = False, multiline: bool = False
) -> bool:
    """Whether a regular expression matches anywhere in the text."""
    if _missing(value):
        return False
    text = _text(value, "regex_search")
    return re.search(pattern, text, flags=_regex_flags(ignorecase, multiline)) is not None


def _mapping(value: Any, filter_name: str) -> Mapping[Any, Any]:
    if _missing(value):
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"{filter_name} expects a mapping, got a {type(value).__name__}")
    return value


def keys(value: Any) -> list[Any]:
    """The keys of a mapping, as a list."""
    return list(_mapping(value, "keys").keys())


def values(value: Any) -> list[Any]:
    """The values of a mapping, as a list."""
    return list(_mapping(value, "values").values())


def items(value: Any) -> list[tuple[Any, Any]]:
    """The ``(key, value)`` pairs of a mapping, as a list."""
    return list(_mapping(value, "items").items())


def _identity_key(value: Any) -> Any:
    try:
        hash(value)
    except TypeError:
        return ("json", json.dumps(value, sort_keys=True, default=repr))
    return ("value", value)


@pass_environment
def unique(
    environment: Environment,
    value: Any,
    case_sensitive: bool = True,
    attribute: str | int | None = None,
) -> list[Any]:
    """The items of a list without repeats, in first-seen order."""
    if _missing(value):
        return []
    seen: set[Any] = set()
    result: list[Any] = []
    for item in value:
        key = item if attribute is None else environment.getitem(item, attribute)
        if not case_sensitive and isinstance(key, str):
            key = key.lower()
        marker = _identity_key(key)
        if marker not in seen:
            seen.add(marker)
            result.append(item)
    return result


def flatten(value: Any, levels: int | None = None) -> list[Any]:
    """Flatten nested lists into one list (``levels`` limits how deep)."""
    if _missing(value):
        return []
    result: list[Any] = []
    _flatten_into(result, value, levels)
    return result


def _flatten_into(result: list[Any], value: Any, levels: int | None) -> None:
    for item in value:
        if isinstance(item, (list, tuple)) and (levels is None or levels > 0):
            _flatten_into(result, item, None if levels is None else levels - 1)
        else:
            result.append(item)


#: Filters added to (or replacing) Jinja's built-ins, by template name.
FILTERS: Final[dict[str, Callable[..., Any]]] = {
    "batch": batch,
    "center": center,
    "count": length,
    "flatten": flatten,
    "format": format_,
    "from_json": from_json,
    "indent": indent,
    "items": items,
    "join": join,
    "keys": keys,
    "length": length,
    "regex_replace": regex_replace,
    "regex_search": regex_search,
    "slice": slice_,
    "to_json": to_json,
    "unique": unique,
    "values": values,
}

#: Jinja built-ins that are removed: ``random`` would make runs impossible to replay.
REMOVED_FILTERS: Final = frozenset({"random"})

#: Functions every template can call (the context may override them).
GLOBALS: Final[dict[str, Callable[..., Any]]] = {"length": length}

#: Jinja's default globals that are removed: ``lipsum`` is random and unbounded.
REMOVED_GLOBALS: Final = frozenset({"lipsum"})
