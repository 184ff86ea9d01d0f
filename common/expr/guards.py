"""Size checks that run *before* an operation allocates, so a template cannot exhaust memory.

A rendered value is bounded at the end (``max_output_bytes``), but ``'a' * 10**9`` or
``2 ** 10**8`` would allocate gigabytes, or burn minutes of CPU, long before that check
runs. The sandbox routes the risky operators, string methods and filters through these
functions, which estimate the size of the result from the operands and refuse it early.
"""

from __future__ import annotations

import math
import re
from string import Formatter
from typing import Any, Final

from jinja2.exceptions import SecurityError

#: Largest integer a template may build with ``*`` or ``**`` (about 4000 decimal digits,
#: just under the point where Python refuses to print an integer).
MAX_INT_BITS: Final = 13_000
#: Longest list or tuple a template may build by repetition, ``+``, ``batch`` or ``slice``
#: (the same bound Jinja puts on ``range``).
MAX_SEQUENCE_ITEMS: Final = 100_000
#: Loop iterations one rendering may run, over all ``{% for %}`` loops together.
MAX_LOOP_STEPS: Final = 1_000_000

_PRINTF_SPEC = re.compile(
    r"%(?:\([^)]*\))?[#0\- +]*(?P<width>\*|\d+)?(?:\.(?P<precision>\*|\d+))?[hlL]?[a-zA-Z%]"
)
_DIGITS = re.compile(r"\d+")
_FORMATTER = Formatter()


class TemplateLimitError(SecurityError):
    """A template asked for a result larger than Treadle allows."""


def _too_big(what: str, size: int, limit: int, unit: str) -> TemplateLimitError:
    return TemplateLimitError(f"{what} would be {size:,} {unit} long (limit {limit:,})")


def _int_bits(value: int) -> int:
    return max(1, abs(value).bit_length())


def check_multiply(left: Any, right: Any, max_chars: int) -> None:
    """Refuse ``left * right`` when the product (number, text or list) would be too large."""
    if isinstance(left, int) and isinstance(right, int):
        bits = _int_bits(left) + _int_bits(right)
        if bits > MAX_INT_BITS:
            raise TemplateLimitError(
                f"the result of '*' would have about {bits:,} bits (limit {MAX_INT_BITS:,})"
            )
        return
    for seq, count in ((left, right), (right, left)):
        if isinstance(count, int) and isinstance(seq, (str, bytes, list, tuple)):
            size = len(seq) * count
            if isinstance(seq, (str, bytes)):
                if size > max_chars:
                    raise _too_big("repeating text with '*'", size, max_chars, "characters")
            elif size > MAX_SEQUENCE_ITEMS:
                raise _too_big("repeating a list with '*'", size, MAX_SEQUENCE_ITEMS, "items")


def check_power(base: Any, exponent: Any) -> None:
    """Refuse ``base ** exponent`` for integers whose result would be huge."""
    if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
        bits = exponent * math.log2(abs(base))
        if bits > MAX_INT_BITS:
            raise TemplateLimitError(
                f"the result of '**' would have about {int(bits):,} bits (limit {MAX_INT_BITS:,})"
            )


def check_add(left: Any, right: Any, max_chars: int) -> None:
    """Refuse ``left + right`` on text or lists past the limits (stops doubling in loops)."""
    if isinstance(left, str) and isinstance(right, str):
        check_text_size(len(left) + len(right), max_chars, "joining text with '+'")
    elif isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
        size = len(left) + len(right)
        if size > MAX_SEQUENCE_ITEMS:
            raise _too_big("joining lists with '+'", size, MAX_SEQUENCE_ITEMS, "items")


def check_text_size(size: int, max_chars: int, what: str) -> None:
    """Refuse a text of ``size`` characters when it is over ``max_chars``."""
    if size > max_chars:
        raise _too_big(what, size, max_chars, "characters")


def check_items(count: int, what: str) -> None:
    """Refuse a list of ``count`` items when it is over :data:`MAX_SEQUENCE_ITEMS`."""
    if count > MAX_SEQUENCE_ITEMS:
        raise _too_big(what, count, MAX_SEQUENCE_ITEMS, "items")


def check_printf(fmt: str, max_chars: int) -> None:
    """Refuse ``%``-formatting whose field widths would build a huge text."""
    for match in _PRINTF_SPEC.finditer(fmt):
        for part in (match.group("width"), match.group("precision")):
            if part == "*":
                raise TemplateLimitError("'*' field widths are not allowed in '%' formatting")
            if part is not None:
                check_text_size(int(part), max_chars, "a '%' formatted field")


def check_format_string(fmt: str, max_chars: int) -> None:
    """Refuse ``str.format`` strings whose field widths would build a huge text."""
    try:
        fields = list(_FORMATTER.parse(fmt))
    except ValueError:
        return  # str.format itself reports the malformed string
    for _literal, _name, spec, _conversion in fields:
        if not spec:
            continue
        if "{" in spec:
            raise TemplateLimitError("nested '{}' in format specifications are not allowed")
        for digits in _DIGITS.findall(spec):
            check_text_size(int(digits), max_chars, "a formatted field")


def check_str_method(text: str, name: str, args: tuple[Any, ...], max_chars: int) -> None:
    """Refuse calls of padding, replacing and joining string methods with huge results."""
    if name in {"center", "ljust", "rjust", "zfill"} and args and isinstance(args[0], int):
        check_text_size(args[0], max_chars, f"the result of '{name}'")
    elif name == "expandtabs":
        tab = args[0] if args and isinstance(args[0], int) else 8
        check_text_size(len(text) + text.count("\t") * tab, max_chars, "the result of 'expandtabs'")
    elif name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        if isinstance(old, str) and isinstance(new, str):
            hits = len(text) + 1 if old == "" else text.count(old)
            size = len(text) + hits * max(0, len(new) - len(old))
            check_text_size(size, max_chars, "the result of 'replace'")
    elif name == "join" and args:
        check_join(text, args[0], max_chars)


def check_join(separator: str, items: Any, max_chars: int) -> None:
    """Refuse joining ``items`` with ``separator`` when the text would be too long."""
    if not isinstance(items, (list, tuple)):
        return  # other iterables are consumed lazily; the output bound still applies
    size = len(separator) * max(0, len(items) - 1)
    size += sum(len(item) for item in items if isinstance(item, str))
    check_text_size(size, max_chars, "the joined text")
