"""JSON definitions read field by field, every problem located by line, column and JSON path.

The dialect importers read JSON documents (a workflows/v1 ``WorkflowVersion``, an AOS plan)
with the same :class:`~treadle.common.loader.reader.Reader` the YAML loader uses, so they
collect every problem instead of stopping at the first. Two differences:

* the data comes from :func:`json.loads` (JSON's own rules: ``1e5`` is a number), while the
  line and column of each node come from the YAML composer, which reads JSON as YAML;
  if that fails the issues carry the file name only;
* every message starts with the JSON path of what it concerns
  (``version.steps[3].condition_expr: ...``), since JSON users think in paths.
"""

from __future__ import annotations

import json
from typing import Any

from treadle.common.loader.reader import Reader
from treadle.common.loader.yaml_source import Document, parse_yaml
from treadle.common.source import Issue, Loc, Path


def json_path(path: Path) -> str:
    """``("version", "steps", 3, "id")`` as ``version.steps[3].id`` (``$`` for the root)."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text or "$"


class JsonReader(Reader):
    """A :class:`Reader` over a JSON document whose messages start with the JSON path."""

    def error(
        self, path: Path, message: str, *, fatal: bool = False, at_value: bool = False
    ) -> None:
        super().error(path, f"{json_path(path)}: {message}", fatal=fatal, at_value=at_value)

    def warning(self, path: Path, message: str) -> None:
        super().warning(path, f"{json_path(path)}: {message}")

    def get(self, mapping: Any, key: str) -> Any:
        """``mapping[key]`` when ``mapping`` is a mapping, else ``None``."""
        return mapping.get(key) if isinstance(mapping, dict) else None


def read_json(text: str, file: str) -> tuple[JsonReader, Any]:
    """Parse ``text``; a syntax error is a fatal issue (and the data ``None``)."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        reader = JsonReader(Document(file))
        reader.issues.append(Issue(Loc(file, exc.lineno, exc.colno), f"invalid JSON: {exc.msg}"))
        reader.fatal = True
        return reader, None
    located = parse_yaml(text, file)
    locations = located.locations if located.ok else {}
    return JsonReader(Document(file, data, dict(locations))), data
