"""Where things are written: file, line and column, and the problems found there.

Every definition error Treadle reports names a location, so the loader records one for
each node it reads and the validator attaches one to each :class:`Issue`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

PathPart = str | int
Path = tuple[PathPart, ...]


@dataclass(frozen=True, slots=True)
class Loc:
    """A 1-based line and column in a file (``line == 0`` when unknown)."""

    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line <= 0:
            return self.file
        return f"{self.file}:{self.line}:{self.col}"


class Severity(StrEnum):
    """How bad an issue is: errors stop a definition from loading, warnings do not."""

    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem in a definition, printed as ``path:line:col: message``."""

    loc: Loc
    message: str
    severity: Severity = Severity.ERROR

    def __str__(self) -> str:
        prefix = "warning: " if self.severity is Severity.WARNING else ""
        return f"{self.loc}: {prefix}{self.message}"


@dataclass(frozen=True)
class SourceMap:
    """Locations of the nodes of one parsed document, keyed by their path from the root.

    A path is a tuple of mapping keys and sequence indexes, e.g. ``("tasks", 2, "retry")``.
    Documents assembled from two files (the split layout) map each path to its own file.
    """

    file: str
    locations: Mapping[Path, Loc] = field(default_factory=dict)

    def loc(self, path: Path) -> Loc:
        """The location of ``path``, or of its nearest recorded ancestor."""
        probe = tuple(path)
        while True:
            found = self.locations.get(probe)
            if found is not None:
                return found
            if not probe:
                return Loc(self.file)
            probe = probe[:-1]
