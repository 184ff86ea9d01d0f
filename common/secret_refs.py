"""Secret references: what runs, events, outbox rows and attempts hold instead of values.

A run never holds a secret's value. Where a template reads one (``kv.get_secret('name')``,
``keystore.<secret key>``, ``parameters.<secret parameter>``) it gets a *reference*, a
marker string the worker replaces with the value just before the action runs::

    ⟦secret:<tag>:kv:<key>⟧               a keystore secret
    ⟦secret:<tag>:param:<run id>/<name>⟧  a secret parameter of run <run id>

The brackets are U+27E6 and U+27E7, which ordinary text does not contain. ``<tag>`` is 16
random hex digits drawn when the top-level run starts and shared by its child runs: the
scheduler attaches a secret to a dispatch only for references carrying the run's own tag,
so text from outside (a parameter, an event, an HTTP response) that imitates a reference
cannot pull a secret into a task. References work inside larger strings too (a connection
URL), and a string that is exactly one reference becomes the value itself (any JSON value).

This module is pure: building, finding and replacing references. Encryption lives in
:mod:`treadle.common.secret_box`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

OPEN: Final = "\u27e6"
CLOSE: Final = "\u27e7"
MARKER: Final = f"{OPEN}secret:"
#: Characters a keystore key must not contain to be referenced (they delimit references).
FORBIDDEN_IN_NAMES: Final = (OPEN, CLOSE)

_TAG = r"[0-9a-f]{16}"
REFERENCE: Final = re.compile(
    rf"{OPEN}secret:(?P<tag>{_TAG}):(?P<source>kv|param):(?P<name>[^{OPEN}{CLOSE}]+){CLOSE}"
)
#: Anything shaped like a reference, whatever its tag: what is masked when shown.
ANY_REFERENCE: Final = re.compile(rf"{OPEN}secret:[^{OPEN}{CLOSE}]*{CLOSE}")

Source = Literal["kv", "param"]


@dataclass(frozen=True, slots=True)
class SecretRef:
    """One reference: ``kv`` names a keystore key; ``param`` a run id and a parameter."""

    tag: str
    source: Source
    name: str
    run_id: str | None = None

    @property
    def text(self) -> str:
        target = self.name if self.source == "kv" else f"{self.run_id}/{self.name}"
        return f"{MARKER}{self.tag}:{self.source}:{target}{CLOSE}"

    @property
    def label(self) -> str:
        """How messages name the secret (never the tag): ``kv 'db.password'``."""
        return f"{'keystore secret' if self.source == 'kv' else 'secret parameter'} {self.name!r}"


def kv_reference(tag: str, key: str) -> str:
    return SecretRef(tag, "kv", key).text


def param_reference(tag: str, run_id: str, name: str) -> str:
    return SecretRef(tag, "param", name, run_id).text


def parse(match: re.Match[str]) -> SecretRef | None:
    """The reference a :data:`REFERENCE` match spells (None for a malformed ``param``)."""
    source: Source = "kv" if match["source"] == "kv" else "param"
    if source == "kv":
        return SecretRef(match["tag"], source, match["name"])
    run_id, slash, name = match["name"].partition("/")
    if not slash or not run_id or not name:
        return None
    return SecretRef(match["tag"], source, name, run_id)


def strings_in(value: Any) -> Iterator[str]:
    """Every string inside ``value`` (mapping values, list items), keys excluded."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from strings_in(item)


def has_marker(value: Any) -> bool:
    """Whether anything in ``value`` looks like a reference (cheap: a substring test)."""
    return any(MARKER in text for text in strings_in(value))


def references_in(value: Any) -> dict[str, SecretRef]:
    """Every well-formed reference inside ``value``, by its text."""
    found: dict[str, SecretRef] = {}
    for text in strings_in(value):
        if MARKER not in text:
            continue
        for match in REFERENCE.finditer(text):
            ref = parse(match)
            if ref is not None:
                found[match.group(0)] = ref
    return found


def substitute(value: Any, resolve: Callable[[str], Any]) -> Any:
    """``value`` with every reference replaced by ``resolve(reference text)``.

    A string that is exactly one reference becomes the resolved value itself; a reference
    inside a longer string becomes its text (a string as it is, anything else as JSON).
    Containers are copied; values without references are returned as they are.
    """
    if isinstance(value, str):
        if MARKER not in value:
            return value
        whole = REFERENCE.fullmatch(value)
        if whole is not None:
            return resolve(value)
        return REFERENCE.sub(lambda m: _as_text(resolve(m.group(0))), value)
    if isinstance(value, Mapping):
        return {key: substitute(item, resolve) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [substitute(item, resolve) for item in value]
    return value


def mask_references(value: Any, mask: str) -> Any:
    """``value`` with anything shaped like a reference replaced by ``mask``."""
    if isinstance(value, str):
        return ANY_REFERENCE.sub(mask, value) if MARKER in value else value
    if isinstance(value, Mapping):
        return {key: mask_references(item, mask) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [mask_references(item, mask) for item in value]
    return value


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
