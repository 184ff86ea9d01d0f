"""Reading one parsed document field by field, collecting every problem with its location.

The loaders never stop at the first problem: each check records an :class:`Issue` at the
path it concerns and returns ``None`` so the caller can carry on with what is left. A
problem that makes the rest of the model misleading (an unsupported feature, another
dialect) is marked *fatal*: the loader then returns no model, and later checks (graph,
templates) do not run on something that does not mean what the user wrote.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import timedelta
from difflib import get_close_matches
from typing import Any

from treadle.common.loader.durations import DurationError, parse_duration
from treadle.common.loader.yaml_source import VALUE, Document
from treadle.common.source import Issue, Loc, Path, Severity, SourceMap


def suggestion(word: str, candidates: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest candidate, or an empty string."""
    close = get_close_matches(word, sorted(set(candidates)), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def sorted_issues(issues: Iterable[Issue]) -> list[Issue]:
    """``issues`` by file, line and column."""
    return sorted(issues, key=lambda i: (i.loc.file, i.loc.line, i.loc.col, i.message))


class Reader:
    """Field access over one document's data, with located issues."""

    def __init__(self, document: Document) -> None:
        self.file = document.file
        self.locations: dict[Path, Loc] = dict(document.locations)
        self.raw = document.raw
        self.issues: list[Issue] = list(document.issues)
        self.fatal = bool(document.issues)

    # -- locations -------------------------------------------------------------------------

    def source_map(self) -> SourceMap:
        return SourceMap(self.file, dict(self.locations))

    def loc(self, path: Path) -> Loc:
        return SourceMap(self.file, self.locations).loc(path)

    def value_loc(self, path: Path) -> Loc:
        found = self.locations.get((*tuple(path), VALUE))
        return found if found is not None else self.loc(path)

    def alias(self, target: Path, source: Path, *, to_value: bool = False) -> None:
        """Make ``target`` (a path in the model) resolve to where ``source`` was written.

        With ``to_value`` the target points at the value's text rather than at its key.
        """
        if target == source and not to_value:
            return
        value = self.value_loc(source)
        self.locations[target] = value if to_value else self.loc(source)
        self.locations[(*target, VALUE)] = value

    # -- issues ----------------------------------------------------------------------------

    def error(
        self, path: Path, message: str, *, fatal: bool = False, at_value: bool = False
    ) -> None:
        loc = self.value_loc(path) if at_value else self.loc(path)
        self.issues.append(Issue(loc, message))
        self.fatal = self.fatal or fatal

    def warning(self, path: Path, message: str) -> None:
        self.issues.append(Issue(self.loc(path), message, Severity.WARNING))

    def sorted_issues(self) -> list[Issue]:
        """The issues in the order of the file (then by message, for stable output)."""
        return sorted_issues(self.issues)

    @property
    def has_errors(self) -> bool:
        return any(i.severity is Severity.ERROR for i in self.issues)

    # -- checks ----------------------------------------------------------------------------

    def check_fields(
        self,
        mapping: Mapping[Any, Any],
        path: Path,
        what: str,
        allowed: Iterable[str],
        *,
        ignored: Iterable[str] = (),
        special: Mapping[str, str] | None = None,
        severity: Severity = Severity.ERROR,
    ) -> None:
        """Report each key of ``mapping`` that is neither allowed nor ignored.

        ``special`` maps a key to its own message (e.g. an unsupported Attune feature); such a
        problem is fatal because ignoring the key would change what the definition means.
        """
        known = set(allowed)
        skip = set(ignored)
        for key in mapping:
            if key in known or key in skip:
                continue
            if special and key in special:
                self.error((*path, key), special[key], fatal=True)
                continue
            message = f"unknown field '{key}' in {what}" + suggestion(str(key), known)
            if severity is Severity.WARNING:
                self.warning((*path, key), message)
            else:
                self.error((*path, key), message)

    def mapping(
        self, value: Any, path: Path, what: str, *, fatal: bool = False
    ) -> dict[Any, Any] | None:
        """``value`` if it is a mapping (``None`` stays ``None``), else an issue."""
        if value is None or isinstance(value, dict):
            return value
        self.error(path, f"{what} must be a mapping, not {_kind(value)}", fatal=fatal)
        return None

    def text(self, value: Any, path: Path, what: str, *, coerce: bool = False) -> str | None:
        """``value`` as a string; numbers are accepted as their written text when ``coerce``."""
        if value is None:
            return None
        if isinstance(value, str):
            return value
        if coerce and isinstance(value, int | float) and not isinstance(value, bool):
            return self.raw.get(path, str(value))
        self.error(path, f"{what} must be a string, not {_kind(value)}", at_value=True)
        return None

    def boolean(self, value: Any, path: Path, what: str) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        self.error(path, f"{what} must be true or false, not {value!r}", at_value=True)
        return None

    def count(self, value: Any, path: Path, what: str, *, minimum: int) -> int | None:
        """``value`` if it is an integer ``>= minimum``."""
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            kind = "a positive integer" if minimum == 1 else f"an integer >= {minimum}"
            self.error(path, f"{what} must be {kind}, not {value!r}", at_value=True)
            return None
        return value

    def duration(self, value: Any, path: Path, what: str) -> timedelta | None:
        if value is None:
            return None
        try:
            return parse_duration(value)
        except DurationError as exc:
            self.error(path, f"{what}: {exc}", at_value=True)
            return None

    def choice(self, value: Any, path: Path, what: str, options: Iterable[str]) -> str | None:
        if value is None:
            return None
        allowed = list(options)
        if isinstance(value, str) and value in allowed:
            return value
        hint = suggestion(str(value), allowed) if isinstance(value, str) else ""
        self.error(
            path,
            f"{what} must be one of {', '.join(allowed)}, not {value!r}{hint}",
            at_value=True,
        )
        return None


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, int | float):
        return f"the number {value!r}"
    return repr(value)
