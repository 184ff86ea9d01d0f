"""Every problem in a workflow definition, found before anything runs.

:func:`validate_workflow` checks a loaded :class:`WorkflowSpec` against a catalog: the graph
(unknown targets, unreachable tasks, unconditional cycles...), template syntax, names the
templates read (``paramters.x``, ``task.missing.result``, ``item`` outside ``with_items``),
values that make no sense together, and the actions tasks call (unknown refs, inputs the
action does not declare, required inputs not given). It returns every issue, sorted by
location, and never raises for problems in the definition. The checks themselves live in
:mod:`treadle.common.validate_spec`; this module is the entry point callers import.

:func:`validate_paths` does the same for files and pack folders, loading them first, so the
``treadle validate`` command and the tests share one entry point.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path as FsPath

from treadle.common.catalog import Catalog
from treadle.common.graph import Graph
from treadle.common.loader.actions import read_action, read_linked_workflow
from treadle.common.loader.attune_workflow import read_workflow_document
from treadle.common.loader.packs import PackLoader
from treadle.common.loader.yaml_source import read_yaml_file
from treadle.common.source import Issue, Loc
from treadle.common.spec import WorkflowSpec
from treadle.common.validate_spec import JINJA_GLOBALS, KNOWN_NAMES, WorkflowCheck, sorted_issues

__all__ = [
    "JINJA_GLOBALS",
    "KNOWN_NAMES",
    "checked_workflow",
    "validate_paths",
    "validate_workflow",
]


def validate_workflow(
    spec: WorkflowSpec, catalog: Catalog | None = None, *, strict: bool = False
) -> list[Issue]:
    """Every issue in ``spec`` (errors and warnings), sorted by location.

    Without a catalog, action refs are not checked. Unknown action refs are warnings, or
    errors when ``strict``.
    """
    return checked_workflow(spec, catalog, strict=strict)[0]


def checked_workflow(
    spec: WorkflowSpec, catalog: Catalog | None = None, *, strict: bool = False
) -> tuple[list[Issue], Graph | None]:
    """:func:`validate_workflow`'s issues and the graph it compiled on the way, routed as
    the catalog says (each action's runner and queue): starting a run publishes that graph
    instead of compiling the spec again."""
    check = WorkflowCheck(spec, catalog, strict)
    return check.run(), check.graph


#: Told of each workflow validated: the spec, its graph (``None`` if it could not be
#: compiled) and the catalog it was checked against (``treadle validate --policy``).
Validated = Callable[[WorkflowSpec, Graph | None, Catalog], None]


def validate_paths(
    paths: Sequence[str | os.PathLike[str]],
    *,
    pack_paths: Sequence[str | os.PathLike[str]] = (),
    strict: bool = False,
    on_workflow: Validated | None = None,
) -> list[Issue]:
    """Load and validate workflow files, pack folders and folders of packs.

    Workflow files are checked against the packs in ``pack_paths`` and the packs shipped
    with Treadle; problems in ``pack_paths`` are reported too. A folder that holds no pack
    is taken as a folder of workflow files. ``on_workflow`` sees each workflow validated.
    """
    seen = on_workflow or _ignored
    issues: list[Issue] = []
    catalog = _bundled_catalog()
    if pack_paths:
        extra = PackLoader().load(pack_paths).catalog
        issues.extend(extra.issues)
        catalog = catalog.merged(extra)
    for given in paths:
        path = os.fspath(given)
        if not os.path.exists(path):
            issues.append(Issue(Loc(path), "no such file or folder"))
        elif os.path.basename(path) == "pack.yaml":
            issues.extend(_validate_packs(os.path.dirname(path) or ".", catalog, strict, seen))
        elif os.path.isdir(path) and _holds_packs(path):
            issues.extend(_validate_packs(path, catalog, strict, seen))
        elif os.path.isdir(path):
            files = _workflow_files(path)
            if not files:
                issues.append(Issue(Loc(path), "no pack.yaml and no workflow files in this folder"))
            for file in files:
                issues.extend(_validate_file(file, catalog, strict, seen))
        else:
            issues.extend(_validate_file(path, catalog, strict, seen))
    return sorted_issues(issues)


def _ignored(spec: WorkflowSpec, graph: Graph | None, catalog: Catalog) -> None:
    del spec, graph, catalog


def _validate_packs(folder: str, catalog: Catalog, strict: bool, seen: Validated) -> list[Issue]:
    loader = PackLoader().load([folder])
    issues = list(loader.catalog.issues)
    combined = catalog.merged(loader.catalog)
    for spec in loader.drafts:
        found, graph = checked_workflow(spec, combined, strict=strict)
        issues.extend(found)
        seen(spec, graph, combined)
    return issues


def _validate_file(path: str, catalog: Catalog, strict: bool, seen: Validated) -> list[Issue]:
    spec, issues = _read_file(path)
    if spec is not None:
        combined = catalog.merged(Catalog(workflows={spec.ref: spec}))
        found, graph = checked_workflow(spec, combined, strict=strict)
        issues.extend(found)
        seen(spec, graph, combined)
    return issues


def _holds_packs(folder: str) -> bool:
    """Whether ``folder`` is a pack or has packs as subfolders."""
    if os.path.isfile(os.path.join(folder, "pack.yaml")):
        return True
    return any(
        os.path.isfile(os.path.join(folder, name, "pack.yaml"))
        for name in os.listdir(folder)
        if not name.startswith(".")
    )


def _workflow_files(folder: str) -> list[str]:
    return [
        os.path.join(folder, name)
        for name in sorted(os.listdir(folder))
        if name.endswith((".yaml", ".yml")) and os.path.isfile(os.path.join(folder, name))
    ]


def _read_file(path: str) -> tuple[WorkflowSpec | None, list[Issue]]:
    """A workflow file, or an action file of the split layout (it has ``workflow_file``)."""
    document = read_yaml_file(path)
    if isinstance(document.data, dict) and "workflow_file" in document.data:
        pack = os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(path))))
        linked = read_action(document, pack)
        issues = list(linked.reader.issues)
        if linked.workflow_path is None:
            return None, issues
        spec, more = read_linked_workflow(linked, read_yaml_file(linked.workflow_path))
        return spec, issues + more
    return read_workflow_document(document)


def _bundled_catalog() -> Catalog:
    """The packs shipped with Treadle (``treadle/packs``); their issues are not the user's.

    Found from this module's own location (``treadle/common/validate.py``) rather than by
    importing ``treadle``, which would make ``common`` depend on the package root.
    """
    folder = FsPath(__file__).parent.parent / "packs"
    if not folder.is_dir():
        return Catalog()
    catalog = PackLoader().load([folder]).catalog
    catalog.issues.clear()
    return catalog
