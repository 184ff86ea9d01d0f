"""Which context names (and attribute paths under them) a template reads.

The validator uses this to catch typos such as ``paramters.x`` or ``task.missing_task.result``
before anything runs. Paths come from the Jinja syntax tree, so text inside strings or
comments never counts, and names a template defines itself (loop variables, ``set``
variables) are left out.
"""

from __future__ import annotations

from collections.abc import Collection

from jinja2 import nodes

_LOOP_NAMES = frozenset({"loop"})


def read_paths(template: nodes.Template, exclude: Collection[str]) -> set[tuple[str, ...]]:
    """Maximal attribute paths read from names that are neither bound locally nor in ``exclude``.

    ``task.x.result.y | length`` gives ``("task", "x", "result", "y")``; ``a['b']`` counts like
    ``a.b``; a dynamic subscript ends the path (``a[i].b`` gives ``("a",)`` and ``("i",)``).
    """
    bound: set[str] = {
        node.name for node in template.find_all(nodes.Name) if node.ctx in ("store", "param")
    }
    if any(True for _ in template.find_all(nodes.For)):
        bound |= _LOOP_NAMES
    skip = bound | set(exclude)
    paths: set[tuple[str, ...]] = set()
    _visit(template, skip, paths)
    return paths


def _visit(node: nodes.Node, skip: set[str], paths: set[tuple[str, ...]]) -> None:
    if isinstance(node, (nodes.Name, nodes.Getattr, nodes.Getitem)):
        path, dynamic = _chain(node)
        if path is not None:
            if path[0] not in skip:
                paths.add(path)
            for child in dynamic:
                _visit(child, skip, paths)
            return
    for child in node.iter_child_nodes():
        _visit(child, skip, paths)


def _chain(node: nodes.Node) -> tuple[tuple[str, ...] | None, list[nodes.Node]]:
    """The path of a ``name.attr['key']`` chain and the dynamic subscripts inside it."""
    suffix: list[str] = []
    dynamic: list[nodes.Node] = []
    while True:
        if isinstance(node, nodes.Name):
            if node.ctx != "load":
                return None, []
            return (node.name, *reversed(suffix)), dynamic
        if isinstance(node, nodes.Getattr):
            suffix.append(node.attr)
            node = node.node
        elif isinstance(node, nodes.Getitem):
            arg = node.arg
            if isinstance(arg, nodes.Const) and isinstance(arg.value, str):
                suffix.append(arg.value)
            else:
                suffix.clear()
                dynamic.append(arg)
            node = node.node
        else:
            return None, []
