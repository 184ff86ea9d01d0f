"""What the YAML editor shows: the definition's text, its problems at their lines, and the
gutter of line numbers beside the text with the bad lines marked.

The editor checks and publishes through the JSON API's own handlers
(:mod:`.editor_routes`); this module only turns what they answer into what a page shows.
Each problem keeps the line and column the loader or the validator gave it and gets the
field it points at (``tasks[0].input``), found by reading the text's YAML once more for
its node locations (:func:`~treadle.common.loader.yaml_source.parse_yaml`); a text that
is not YAML at all has problems with a line and no field.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from treadle.api.models.workflows import IssueInfo
from treadle.clientlib.definition_admin import BODY_FILE, check_not_from_pack
from treadle.clientlib.definition_views import stored_spec
from treadle.common.dialects.pack_yaml import spec_to_yaml
from treadle.common.errors import ConflictError
from treadle.common.loader.yaml_source import VALUE, parse_yaml
from treadle.common.source import Issue, Loc, Path, Severity
from treadle.scheduler.store import UnitOfWork

__all__ = [
    "NEW_WORKFLOW",
    "Editor",
    "EditorAction",
    "Outcome",
    "Problem",
    "editor_text",
    "problems_of",
    "publish_refusal",
    "warnings_of",
]

#: The text a new workflow starts from.
NEW_WORKFLOW: Final = """\
# A new workflow: its ref is <pack>.<name>. See docs/language.md.
ref: mine.hello
description: Greets someone.
parameters:
  name: {type: string, default: world}
tasks:
  - name: greet
    action: core.echo
    input:
      message: "Hello, {{ parameters.name }}!"
"""
#: The text area's height in rows, at least and at most: it grows with the text, so that
#: the gutter of line numbers beside it lines up without a script (the script makes it
#: shorter and keeps the gutter in step as it scrolls).
MIN_ROWS: Final = 12
MAX_ROWS: Final = 400


class EditorAction(StrEnum):
    """The editor's two buttons."""

    VALIDATE = "validate"
    PUBLISH = "publish"


class Outcome(StrEnum):
    """What the last press of a button found."""

    VALID = "valid"
    INVALID = "invalid"
    REFUSED = "refused"


@dataclass(frozen=True, slots=True)
class Problem:
    """One problem of the text: where (line and column, 0 when unknown), the field it
    points at (when the text is YAML), what, and how bad."""

    line: int
    column: int
    field: str | None
    message: str
    severity: Severity

    @property
    def where(self) -> str:
        if self.line <= 0:
            return "the definition"
        if self.column <= 0:
            return f"line {self.line}"
        return f"line {self.line}, column {self.column}"


@dataclass(frozen=True, slots=True)
class GutterLine:
    """A line number beside the text, marked when a problem is there."""

    number: int
    mark: Severity | None


@dataclass(frozen=True)
class Editor:
    """The editor as a page shows it: the text and what the last button found."""

    text: str
    problems: tuple[Problem, ...] = ()
    outcome: Outcome | None = None
    #: What the outcome says besides the problems (the ref that is valid, a refusal).
    message: str | None = None

    @property
    def line_count(self) -> int:
        """The text area's lines: after a last newline, the empty line the cursor can reach."""
        return self.text.count("\n") + 1

    @property
    def rows(self) -> int:
        """The text area's height: the text's lines and two more, within the bounds."""
        return min(max(self.line_count + 2, MIN_ROWS), MAX_ROWS)

    @property
    def gutter(self) -> list[GutterLine]:
        """A number for every line of the text; a line with an error is marked as an
        error, else one with a warning as a warning."""
        marks: dict[int, Severity] = {}
        for problem in self.problems:
            if marks.get(problem.line) is not Severity.ERROR:
                marks[problem.line] = problem.severity
        return [GutterLine(n, marks.get(n)) for n in range(1, self.line_count + 1)]

    @property
    def errors(self) -> int:
        return sum(1 for p in self.problems if p.severity is Severity.ERROR)


def _field_name(path: Path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def _fields_by_place(text: str) -> dict[tuple[int, int], str]:
    """``{(line, column): field}`` of every node of ``text`` (the shortest path of those
    starting at a place: a key names its mapping entry, not what is inside)."""
    located = parse_yaml(text, BODY_FILE)
    found: dict[tuple[int, int], Path] = {}
    for path, loc in located.locations.items():
        bare = tuple(part for part in path if part != VALUE)
        if not bare:
            continue
        place = (loc.line, loc.col)
        if place not in found or len(bare) < len(found[place]):
            found[place] = bare
    return {place: _field_name(path) for place, path in found.items()}


def problems_of(text: str, issues: Iterable[Issue]) -> tuple[Problem, ...]:
    """The issues the loader and the validator found in ``text``, by line, each with the
    field at its place when the text is YAML."""
    fields = _fields_by_place(text)
    problems = {
        Problem(
            line=issue.loc.line,
            column=issue.loc.col,
            field=fields.get((issue.loc.line, issue.loc.col)),
            message=issue.message,
            severity=issue.severity,
        )
        for issue in issues
    }
    return tuple(sorted(problems, key=lambda p: (p.line, p.column, p.message)))


def warnings_of(text: str, warnings: Iterable[IssueInfo]) -> tuple[Problem, ...]:
    """The warnings of a valid definition (``POST /workflows/validate``'s) as problems."""
    issues = [Issue(Loc(w.file, w.line, w.column), w.message, Severity.WARNING) for w in warnings]
    return problems_of(text, issues)


def editor_text(uow: UnitOfWork, ref: str, version: int, workspace: str) -> str:
    """The YAML a person edits for ``version`` of ``ref``: the stored definition written
    as a workflow file (it reads back as the same definition)."""
    owner = uow.definition_owner(ref, workspace)
    stored = uow.get_definition(ref, version, workspace=workspace if owner is None else owner)
    return spec_to_yaml(stored_spec(stored), header=f"{ref}, from version {version}")


def publish_refusal(uow: UnitOfWork, ref: str, workspace: str) -> str | None:
    """Why publishing ``ref`` from ``workspace`` would be refused (409), as the JSON API
    says it: a registered pack defines it, or it is shared by every workspace."""
    try:
        check_not_from_pack(uow, ref, None, "replacing", workspace)
    except ConflictError as exc:
        return str(exc)
    return None
