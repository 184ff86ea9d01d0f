"""Recognising templates in text without rendering them.

Used by the loader (to combine legacy conditions) and the renderer (to decide whether a
value keeps its JSON type), so both agree on what "exactly one expression" means.
"""

from __future__ import annotations

import re
from typing import Any

_SINGLE = re.compile(r"^\s*\{\{(?P<expr>.*)\}\}\s*$", re.DOTALL)


def is_template(value: Any) -> bool:
    """Whether ``value`` is a string containing Jinja syntax."""
    return isinstance(value, str) and ("{{" in value or "{%" in value or "{#" in value)


def expression_source(template: str) -> str | None:
    """The expression inside ``template`` if it is exactly one ``{{ expression }}``.

    ``"{{ a > 1 }}"`` gives ``"a > 1"``; ``"x {{ a }}"`` and ``"{{ a }} {{ b }}"`` give ``None``.
    """
    match = _SINGLE.match(template)
    if match is None:
        return None
    inner = match.group("expr")
    if "{{" in inner or "}}" in inner or "{%" in inner:
        return None
    return inner.strip()
