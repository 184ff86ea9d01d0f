"""YAML text to plain Python data, remembering where every node was written.

PyYAML's constructor throws positions away, so this module walks the composed node tree
itself: it builds dicts, lists and scalars and records, for each path from the root, the
location of the mapping key (most useful for "unknown field" messages) and, under
``path + (VALUE,)``, where the value's text starts (most useful for template errors, since
a block scalar's text starts on the line after its ``|``).

Problems (syntax errors, duplicate keys, unsupported tags, alias bombs) come back as
:class:`Issue` values rather than exceptions, so the loader can report them with the rest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Final

import yaml

from treadle.common.source import Issue, Loc, Path, SourceMap

#: Path suffix under which the start of a node's *value text* is recorded.
VALUE: Final = "<value>"

#: Nodes built per document at most; aliases can otherwise expand without bound.
MAX_NODES: Final = 200_000
#: Nesting depth at most, so deep documents cannot exhaust the Python stack.
MAX_DEPTH: Final = 200

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(f"{_TAG}{name}" for name in ("str", "int", "float", "bool", "null"))

try:  # the C composer is several times faster; fall back to pure Python when absent
    _Loader: type[Any] = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - depends on how PyYAML was built
    _Loader = yaml.SafeLoader


@dataclass
class Document:
    """One parsed YAML file: its data, the locations of its nodes and its problems."""

    file: str
    data: Any = None
    locations: dict[Path, Loc] = field(default_factory=dict)
    raw: dict[Path, str] = field(default_factory=dict)
    issues: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.issues

    def source_map(self) -> SourceMap:
        return SourceMap(self.file, self.locations)

    def loc(self, path: Path) -> Loc:
        return self.source_map().loc(path)


class _TooBigError(Exception):
    def __init__(self, loc: Loc, message: str) -> None:
        super().__init__(message)
        self.loc = loc
        self.message = message


def parse_yaml(text: str, file: str) -> Document:
    """Parse ``text`` (the contents of ``file``) into a :class:`Document`."""
    document = Document(file)
    try:
        root = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as exc:
        document.issues.append(Issue(_mark_loc(file, exc.problem_mark), _syntax_message(exc)))
        return document
    except yaml.YAMLError as exc:
        document.issues.append(Issue(Loc(file, 1, 1), f"YAML syntax error: {exc}"))
        return document
    if root is None:
        document.issues.append(Issue(Loc(file, 1, 1), "the file is empty"))
        return document
    builder = _Builder(document, text.splitlines())
    document.locations[()] = _mark_loc(file, root.start_mark)
    try:
        document.data = builder.build(root, (), 0)
    except _TooBigError as exc:
        document.issues.append(Issue(exc.loc, exc.message))
        document.data = None
    return document


def parse_yaml_all(text: str, file: str) -> list[Document]:
    """Every YAML document in ``text`` (a stream split by ``---``), each with its locations.

    A document holding only comments is left out (its ``data`` would be ``None``); a
    syntax error ends the stream as one document holding the issue.
    """
    documents: list[Document] = []
    lines = text.splitlines()
    try:
        for root in yaml.compose_all(text, Loader=_Loader):
            document = Document(file)
            document.locations[()] = _mark_loc(file, root.start_mark)
            try:
                document.data = _Builder(document, lines).build(root, (), 0)
            except _TooBigError as exc:
                document.issues.append(Issue(exc.loc, exc.message))
            if document.data is not None or document.issues:
                documents.append(document)
    except yaml.MarkedYAMLError as exc:
        where = _mark_loc(file, exc.problem_mark)
        documents.append(Document(file, issues=[Issue(where, _syntax_message(exc))]))
    except yaml.YAMLError as exc:
        problem = Issue(Loc(file, 1, 1), f"YAML syntax error: {exc}")
        documents.append(Document(file, issues=[problem]))
    return documents


def read_yaml_documents(path: str) -> list[Document]:
    """Every document of the YAML file at ``path`` (:func:`parse_yaml_all`); an unreadable
    file is one document holding the issue."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        return [Document(path, issues=[Issue(Loc(path), f"the file is not UTF-8 text: {exc}")])]
    except OSError as exc:
        return [Document(path, issues=[Issue(Loc(path), f"cannot read the file: {exc.strerror}")])]
    return parse_yaml_all(text, path)


def read_yaml_file(path: str) -> Document:
    """Read and parse the file at ``path``; an unreadable file is an issue, not an exception."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        return Document(path, issues=[Issue(Loc(path), f"the file is not UTF-8 text: {exc}")])
    except OSError as exc:
        return Document(path, issues=[Issue(Loc(path), f"cannot read the file: {exc.strerror}")])
    return parse_yaml(text, path)


class _Builder:
    """Turns nodes into data, recording locations and collecting problems."""

    def __init__(self, document: Document, lines: list[str]) -> None:
        self.document = document
        self.lines = lines
        self.count = 0
        self.active: set[int] = set()
        self.constructor = yaml.SafeLoader("")

    def build(self, node: yaml.Node, path: Path, depth: int) -> Any:
        self.count += 1
        loc = _mark_loc(self.document.file, node.start_mark)
        if self.count > MAX_NODES:
            raise _TooBigError(loc, f"the document is too large (more than {MAX_NODES} nodes)")
        if depth > MAX_DEPTH:
            raise _TooBigError(
                loc, f"the document is nested too deeply (more than {MAX_DEPTH} levels)"
            )
        if id(node) in self.active:
            raise _TooBigError(loc, "a YAML alias refers to a node that contains it")
        self.document.locations[(*path, VALUE)] = self._content_loc(node)
        if isinstance(node, yaml.ScalarNode):
            return self._scalar(node, path)
        self.active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                return self._sequence(node, path, depth)
            if isinstance(node, yaml.MappingNode):
                return self._mapping(node, path, depth)
        finally:
            self.active.discard(id(node))
        return None  # pragma: no cover - PyYAML has only the three node kinds

    def _scalar(self, node: yaml.ScalarNode, path: Path) -> Any:
        self.document.raw[path] = node.value
        if node.tag in _SCALAR_TAGS:
            return self.constructor.construct_object(node)
        if node.tag == f"{_TAG}timestamp":
            return node.value  # dates stay text: workflow data must be JSON
        self._problem(node, f"the YAML tag '{node.tag}' is not supported; quote the value")
        return node.value

    def _sequence(self, node: yaml.SequenceNode, path: Path, depth: int) -> list[Any]:
        items: list[Any] = []
        for index, child in enumerate(node.value):
            child_path = (*path, index)
            self.document.locations[child_path] = _mark_loc(self.document.file, child.start_mark)
            items.append(self.build(child, child_path, depth + 1))
        return items

    def _mapping(self, node: yaml.MappingNode, path: Path, depth: int) -> dict[Any, Any]:
        result: dict[Any, Any] = {}
        merged: list[yaml.MappingNode] = []
        for key_node, value_node in node.value:
            if key_node.tag == f"{_TAG}merge":
                merged.extend(_merge_sources(value_node))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self._problem(
                    key_node, "a mapping key must be a plain value, not a list or mapping"
                )
                continue
            key = self._scalar(key_node, (*path, "<key>"))
            self.document.raw.pop((*path, "<key>"), None)
            if key in result:
                first = self.document.locations.get((*path, key))
                where = f" (first at line {first.line})" if first else ""
                self._problem(key_node, f"duplicate key '{key}'{where}")
                continue
            child_path = (*path, key)
            self.document.locations[child_path] = _mark_loc(self.document.file, key_node.start_mark)
            result[key] = self.build(value_node, child_path, depth + 1)
        for source in merged:  # YAML merge keys (<<): explicit keys win
            if id(source) in self.active:
                raise _TooBigError(
                    _mark_loc(self.document.file, source.start_mark),
                    "a YAML merge refers to a mapping that contains it",
                )
            for key_node, value_node in source.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = self.constructor.construct_object(key_node)
                if key in result:
                    continue
                child_path = (*path, key)
                self.document.locations[child_path] = _mark_loc(
                    self.document.file, key_node.start_mark
                )
                result[key] = self.build(value_node, child_path, depth + 1)
        return result

    def _content_loc(self, node: yaml.Node) -> Loc:
        """Where the value's text starts: after a quote, or on the line after ``|``/``>``."""
        mark = node.start_mark
        style = getattr(node, "style", None)
        if style in ("|", ">"):
            index = mark.line + 1
            while index < len(self.lines) and not self.lines[index].strip():
                index += 1
            if index < len(self.lines):
                text = self.lines[index]
                return Loc(self.document.file, index + 1, len(text) - len(text.lstrip()) + 1)
        if style in ("'", '"'):
            return Loc(self.document.file, mark.line + 1, mark.column + 2)
        return _mark_loc(self.document.file, mark)

    def _problem(self, node: yaml.Node, message: str) -> None:
        self.document.issues.append(Issue(_mark_loc(self.document.file, node.start_mark), message))


def _merge_sources(node: yaml.Node) -> list[yaml.MappingNode]:
    if isinstance(node, yaml.MappingNode):
        return [node]
    if isinstance(node, yaml.SequenceNode):
        return [child for child in node.value if isinstance(child, yaml.MappingNode)]
    return []


def _mark_loc(file: str, mark: Any) -> Loc:
    if mark is None:
        return Loc(file, 1, 1)
    return Loc(file, int(mark.line) + 1, int(mark.column) + 1)


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    """``YAML syntax error: <problem> (<context> at line N)``."""
    message = f"YAML syntax error: {exc.problem or 'invalid YAML'}"
    if exc.context:
        where = f" at line {exc.context_mark.line + 1}" if exc.context_mark is not None else ""
        message += f" ({exc.context}{where})"
    return message
