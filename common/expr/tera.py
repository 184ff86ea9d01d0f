"""Rewrite Tera's C-style conditional ``a ? b : c`` into Jinja's ``(b if a else c)``.

Attune workflows were written for Tera, whose users reach for ``cond ? x : y``. Jinja has no
such operator, so before compiling, every ``{{ ... }}`` block (and every bare expression) is
rewritten. The rewrite understands string literals, brackets, nesting on either side
(``a ? b : c ? d : e`` and ``a ? (b ? c : d) : e``), and the other places a ``:`` may appear
(dict literals, slices), and it never adds or removes a line break, so line numbers in error
messages still point into the author's text. Text without ``?`` is returned untouched.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_OPENERS = {"(": ")", "[": "]", "{": "}"}
_CLOSERS = frozenset(_OPENERS.values())
_PUNCT = frozenset("?:,")
_RAW_START = re.compile(r"\{%[-+]?\s*raw\s*[-+]?%\}")
_RAW_END = re.compile(r"\{%[-+]?\s*endraw\s*[-+]?%\}")
_HSPACE = " \t"


class TernaryError(ValueError):
    """A ``?`` without its ``:`` (or the other way round); ``offset`` is where it starts."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


@dataclass
class _Punct:
    char: str
    offset: int


@dataclass
class _Group:
    opener: str
    children: list[_Atom]
    closer: str


_Atom = str | _Punct | _Group


def rewrite_template(template: str) -> str:
    """Rewrite conditionals inside every ``{{ ... }}`` block of ``template``."""
    if "?" not in template:
        return template
    out: list[str] = []
    pos = copied = 0
    length = len(template)
    while pos < length:
        start = template.find("{", pos)
        if start < 0 or start + 1 >= length:
            break
        marker = template[start + 1]
        if marker == "#":
            end = template.find("#}", start + 2)
            pos = length if end < 0 else end + 2
            continue
        if marker == "%":
            raw = _RAW_START.match(template, start)
            if raw is not None:
                end_raw = _RAW_END.search(template, raw.end())
                pos = length if end_raw is None else end_raw.end()
            else:
                pos = _scan_expression(template, start + 2, "%}")
            continue
        if marker != "{":
            pos = start + 1
            continue
        inner_start = start + 2
        if inner_start < length and template[inner_start] == "-":
            inner_start += 1
        close = _scan_expression(template, inner_start, "}}")
        if close >= length:  # unterminated: leave it for Jinja to report
            break
        inner_end = close
        if template[inner_end - 1] == "-" and inner_end - 1 >= inner_start:
            inner_end -= 1
        out.append(template[copied:inner_start])
        out.append(_rewrite_span(template, inner_start, inner_end))
        pos = copied = inner_end
    out.append(template[copied:])
    return "".join(out)


def rewrite_expression(expression: str) -> str:
    """Rewrite conditionals in a bare expression such as ``a ? 'x' : 'y'``."""
    if "?" not in expression:
        return expression
    return _rewrite_span(expression, 0, len(expression))


def _rewrite_span(text: str, start: int, end: int) -> str:
    span = text[start:end]
    if "?" not in span:
        return span
    atoms = _parse(text, start, end)
    if atoms is None:  # unbalanced brackets or strings: Jinja reports those itself
        return span
    return _sequence(atoms)


def _scan_expression(text: str, pos: int, end_marker: str) -> int:
    """Index of ``end_marker`` closing an expression that starts at ``pos`` (or ``len``)."""
    depth = 0
    length = len(text)
    while pos < length:
        char = text[pos]
        if char in "'\"":
            pos = _skip_string(text, pos, length)
            continue
        if depth == 0 and text.startswith(end_marker, pos):
            return pos
        if char in _OPENERS:
            depth += 1
        elif char in _CLOSERS and depth > 0:
            depth -= 1
        pos += 1
    return length


def _skip_string(text: str, pos: int, end: int) -> int:
    quote = text[pos]
    pos += 1
    while pos < end:
        char = text[pos]
        if char == "\\":
            pos += 2
            continue
        if char == quote:
            return pos + 1
        pos += 1
    return end


def _parse(text: str, start: int, end: int) -> list[_Atom] | None:
    """Split ``text[start:end]`` into plain runs, punctuation and bracket groups."""
    root: list[_Atom] = []
    stack: list[tuple[str, list[_Atom]]] = []
    current = root
    run_start = start
    pos = start

    def flush(upto: int) -> None:
        if upto > run_start:
            current.append(text[run_start:upto])

    while pos < end:
        char = text[pos]
        if char in "'\"":
            after = _skip_string(text, pos, end)
            if after >= end and (after - pos < 2 or text[after - 1] != char):
                return None
            pos = after
            continue
        if char in _OPENERS:
            flush(pos)
            stack.append((char, current))
            current = []
            pos += 1
            run_start = pos
            continue
        if char in _CLOSERS:
            if not stack or _OPENERS[stack[-1][0]] != char:
                return None
            flush(pos)
            opener, parent = stack.pop()
            parent.append(_Group(opener, current, char))
            current = parent
            pos += 1
            run_start = pos
            continue
        if char in _PUNCT:
            flush(pos)
            current.append(_Punct(char, pos))
            pos += 1
            run_start = pos
            continue
        pos += 1
    flush(end)
    if stack:
        return None
    return root


def _text(atoms: list[_Atom]) -> str:
    parts: list[str] = []
    for atom in atoms:
        if isinstance(atom, str):
            parts.append(atom)
        elif isinstance(atom, _Punct):
            parts.append(atom.char)
        else:
            parts.append(atom.opener + _sequence(atom.children) + atom.closer)
    return "".join(parts)


def _split(atoms: list[_Atom], char: str) -> list[list[_Atom]]:
    pieces: list[list[_Atom]] = [[]]
    for atom in atoms:
        if isinstance(atom, _Punct) and atom.char == char:
            pieces.append([])
        else:
            pieces[-1].append(atom)
    return pieces


def _sequence(atoms: list[_Atom]) -> str:
    """Comma-separated elements (arguments, list items, tuple members)."""
    return ",".join(_element(piece) for piece in _split(atoms, ","))


def _element(atoms: list[_Atom]) -> str:
    """One element, split at colons that belong to slices or dict items, not to a ``?``."""
    pieces: list[list[_Atom]] = [[]]
    pending = 0
    for atom in atoms:
        if isinstance(atom, _Punct) and atom.char in "?:":
            if atom.char == "?":
                pending += 1
            elif pending:
                pending -= 1
            else:
                pieces.append([])
                continue
        pieces[-1].append(atom)
    return ":".join(_conditional(piece) for piece in pieces)


def _conditional(atoms: list[_Atom]) -> str:
    question = next(
        (i for i, atom in enumerate(atoms) if isinstance(atom, _Punct) and atom.char == "?"),
        None,
    )
    if question is None:
        return _text(atoms)
    mark = atoms[question]
    assert isinstance(mark, _Punct)
    condition, rest = atoms[:question], atoms[question + 1 :]
    index = _matching_colon(rest)
    if index is None:
        raise TernaryError(
            "'?' without a matching ':' (write 'condition ? then : else')", mark.offset
        )
    then, otherwise = rest[:index], rest[index + 1 :]
    cond_text = _conditional(condition)
    lead = cond_text[: len(cond_text) - len(cond_text.lstrip())]
    else_text = _conditional(otherwise)
    trail = else_text[len(else_text.rstrip()) :]
    return (
        f"{lead}({_conditional(then).strip(_HSPACE)} if "
        f"{cond_text[len(lead) :].strip(_HSPACE)} else "
        f"{else_text[: len(else_text) - len(trail)].strip(_HSPACE)}){trail}"
    )


def _matching_colon(atoms: list[_Atom]) -> int | None:
    """Index of the ``:`` that closes a ``?``, skipping nested ``? :`` pairs."""
    nested = 0
    for index, atom in enumerate(atoms):
        if isinstance(atom, _Punct) and atom.char == "?":
            nested += 1
        elif isinstance(atom, _Punct) and atom.char == ":":
            if nested == 0:
                return index
            nested -= 1
    return None
