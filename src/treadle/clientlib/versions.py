"""Published versions of a workflow: who published each, how many runs use it, what changed.

Every registration whose content changed publishes the next version of a ref (see
:mod:`treadle.scheduler.service.definitions`), and every run is pinned to the version it
started on. Operators need to see that history before changing a workflow that runs are
still using: ``treadle workflows versions REF`` lists it, ``treadle workflows diff REF``
shows what one version changed. The text that is compared is the canonical definition as
stored, made readable: empty and unset fields are left out (they mean the defaults), and
the route pinned for each action (runner, queue) follows as a second YAML document, since
a changed route publishes a new version too.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Mapping
from typing import Any

import yaml
from sqlalchemy import func, select

from treadle.clientlib.version_info import VersionInfo
from treadle.common.access import DEFAULT_WORKSPACE
from treadle.common.errors import NotFound
from treadle.scheduler.service.definitions import ROUTES_DOCUMENT, SPEC_DOCUMENT
from treadle.scheduler.service.deletions import TOMBSTONE_DOCUMENT
from treadle.scheduler.store import UnitOfWork
from treadle.scheduler.store.models import runs

__all__ = ["VersionInfo", "definition_text", "list_versions", "unified_diff"]

#: Keys shown first in a rendered definition, in this order; the rest follow sorted.
_LEADING_KEYS = ("ref", "name", "type", "action")
#: Bookkeeping of the loader (where a task or transition sits in its file), not part of
#: what runs. Only fields of the definition's own structure are hidden: an author's data
#: (below) is shown whole, whatever its keys are called.
_HIDDEN_KEYS = frozenset({"path"})
#: Values written by the author (inputs, templates, literals, schemas): shown exactly as
#: stored, never trimmed or reordered.
_DATA_KEYS = frozenset(
    {
        "input",
        "output_map",
        "output_schema",
        "metadata",
        "publish",
        "vars",
        "default",
        "schema_",
        "with_items",
        "value",
        "prompt",
        "assigned_to",
    }
)
#: Keys that hold author data only when their value is a mapping: a trigger's
#: ``parameters`` (templates by parameter name), as opposed to the definition's list of
#: parameter declarations.
_DATA_MAPPING_KEYS = frozenset({"parameters"})
#: Fields where an empty list or mapping is a value of its own, not the same as leaving the
#: field out (``with_items: []`` runs no item; a parameter's ``default: []``): shown.
_EMPTY_IS_A_VALUE = frozenset({"default", "with_items", "value", "prompt", "assigned_to"})


def list_versions(
    uow: UnitOfWork, ref: str, workspace: str = DEFAULT_WORKSPACE
) -> list[VersionInfo]:
    """Every version of ``ref`` as ``workspace`` sees it (its own definition, else the
    shared one), oldest first, with the workspace's run count (NotFound if none)."""
    owner = uow.definition_owner(ref, workspace)
    versions = [] if owner is None else uow.list_definition_versions(ref, workspace=owner)
    if not versions:
        raise NotFound(f"workflow '{ref}' has no published version")
    counts: dict[int, int] = {
        int(version): int(count)
        for version, count in uow.connection.execute(
            select(runs.c.definition_version, func.count())
            .where(runs.c.workspace == workspace, runs.c.workflow == ref)
            .group_by(runs.c.definition_version)
        ).all()
        if version is not None
    }
    return [
        VersionInfo(
            ref=v.ref,
            version=v.version,
            content_hash=v.content_hash,
            author=v.author,
            created_at=v.created_at,
            dialect=v.dialect,
            runs=counts.get(v.version, 0),
            workspace=v.workspace,
        )
        for v in versions
    ]


def definition_text(documents: Mapping[str, str], *, as_json: bool = False) -> str:
    """A stored version's definition as readable YAML (or JSON), for reading and diffing.

    A deletion's tombstone (no definition) reads as ``deleted: {last_version, reason}``.
    """
    if SPEC_DOCUMENT not in documents and TOMBSTONE_DOCUMENT in documents:
        tombstone = json.loads(documents[TOMBSTONE_DOCUMENT])
        shown = {"deleted": {k: v for k, v in tombstone.items() if k != "deleted"}}
        if as_json:
            return json.dumps(shown, indent=2, ensure_ascii=False) + "\n"
        return yaml.safe_dump(shown, sort_keys=True, allow_unicode=True, width=100)
    spec = _readable(json.loads(documents[SPEC_DOCUMENT]))
    routes = json.loads(documents.get(ROUTES_DOCUMENT, "{}"))
    if as_json:
        shown = {"definition": spec, "action_routes": routes}
        return json.dumps(shown, indent=2, ensure_ascii=False) + "\n"
    head = yaml.safe_dump(spec, sort_keys=False, allow_unicode=True, width=100)
    tail = yaml.safe_dump({"action_routes": routes}, sort_keys=True, allow_unicode=True, width=100)
    return f"{head}---\n# how each action runs, pinned with this version\n{tail}"


def unified_diff(old: str, new: str, *, old_label: str, new_label: str) -> str:
    """``diff -u`` of two texts ('' when they are equal)."""
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=old_label,
        tofile=new_label,
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)


def _readable(value: Any) -> Any:
    """``value`` without unset or empty fields and loader bookkeeping, names first."""
    if isinstance(value, dict):
        kept = {
            key: item if _is_data(key, item) else _readable(item)
            for key, item in value.items()
            if key not in _HIDDEN_KEYS and not _unset(key, item)
        }
        leading = [key for key in _LEADING_KEYS if key in kept]
        rest = sorted(key for key in kept if key not in _LEADING_KEYS)
        return {key: kept[key] for key in (*leading, *rest)}
    if isinstance(value, list):
        return [_readable(item) for item in value]
    return value


def _is_data(key: str, value: Any) -> bool:
    return key in _DATA_KEYS or (key in _DATA_MAPPING_KEYS and isinstance(value, dict))


def _unset(key: str, value: Any) -> bool:
    """Whether a field holds its "not given" value (left out of the text)."""
    if value is None:
        return True
    return key not in _EMPTY_IS_A_VALUE and value in ([], {})
