"""What :meth:`TemplateEngine.check` reports about a template it cannot compile."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TemplateProblem:
    """One syntax problem; ``line`` is 1-based within the template text, ``col`` if known.

    The validator adds the line of the YAML value to place the problem in the file.
    """

    message: str
    line: int
    col: int | None = None

    def __str__(self) -> str:
        where = f"line {self.line}" if self.col is None else f"line {self.line}, col {self.col}"
        return f"{self.message} ({where})"
