"""Listing published workflows and registered packs a page at a time, by ref.

The workflows routes of the HTTP API list every workflow with a published version (the
latest version of each ref, with its documents) and every pack the scheduler registered.
A database may hold thousands of refs, so both are keyset pages (never ``OFFSET``): a page
ends with a cursor, the last ref as an opaque string, and the next page holds the refs
strictly after it in ref order, which the unique ``(ref, version)`` index of
``definitions`` and the primary key of ``packs`` serve. A ref published while someone
pages through is either after the cursor (it shows up) or before it (it does not): no page
repeats or skips a ref that was there all along.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, func, select

from treadle.common.access import SHARED_WORKSPACE
from treadle.common.errors import ParameterError
from treadle.common.spec import RunnerType
from treadle.scheduler.store.definition_repo import definition_version
from treadle.scheduler.store.entries import DefinitionVersion
from treadle.scheduler.store.models import actions, definitions, packs

__all__ = [
    "DefinitionHead",
    "decode_ref_cursor",
    "encode_ref_cursor",
    "latest_definitions",
    "pack_workflows",
    "registered_packs",
]


@dataclass(frozen=True, slots=True)
class DefinitionHead:
    """The latest version of one ref (with its documents) and when the ref was first
    published."""

    latest: DefinitionVersion
    first_published_at: datetime


def encode_ref_cursor(ref: str) -> str:
    """The opaque cursor of a page ending at ``ref``."""
    raw = json.dumps([ref], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_ref_cursor(cursor: str) -> str:
    """The ref of a cursor from :func:`encode_ref_cursor`; ParameterError otherwise."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        [ref] = json.loads(raw)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise _bad_cursor(cursor) from None
    if not isinstance(ref, str):
        raise _bad_cursor(cursor)
    return ref


def _bad_cursor(cursor: str) -> ParameterError:
    return ParameterError([f"{cursor!r} is not a next cursor a listing returned"], subject="cursor")


def _escaped(text: str) -> str:
    """``text`` for a LIKE pattern, its wildcards taken literally (escape ``\\``)."""
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def latest_definitions(
    connection: Connection,
    *,
    after: str | None,
    pack: str | None,
    limit: int,
    workspace: str = SHARED_WORKSPACE,
) -> list[DefinitionHead]:
    """The latest version of up to ``limit`` refs after ``after``, in ref order, as
    ``workspace`` sees them: its own definitions and the shared ones (its own first when
    both have a ref).

    ``pack`` keeps the refs of that pack only (``pack.<name>``). Every ref counts, deleted
    ones too (their latest version is a tombstone): the caller decides what to show.
    """
    # Which owner each ref of the page has for this workspace: '' sorts before any
    # workspace name, so the greatest owner is the workspace's own when it has one.
    owners = select(definitions.c.ref, func.max(definitions.c.workspace).label("owner")).where(
        definitions.c.workspace.in_(sorted({workspace, SHARED_WORKSPACE}))
    )
    if after is not None:
        owners = owners.where(definitions.c.ref > after)
    if pack is not None:
        owners = owners.where(definitions.c.ref.like(_escaped(pack) + ".%", escape="\\"))
    page = owners.group_by(definitions.c.ref).order_by(definitions.c.ref).limit(limit).subquery()
    heads = (
        select(
            definitions.c.ref,
            definitions.c.workspace,
            func.max(definitions.c.version).label("latest"),
            func.min(definitions.c.created_at).label("first_at"),
        )
        .join(
            page,
            and_(definitions.c.ref == page.c.ref, definitions.c.workspace == page.c.owner),
        )
        .group_by(definitions.c.ref, definitions.c.workspace)
        .subquery()
    )
    stmt = (
        select(definitions, heads.c.first_at)
        .join(
            heads,
            and_(
                definitions.c.ref == heads.c.ref,
                definitions.c.workspace == heads.c.workspace,
                definitions.c.version == heads.c.latest,
            ),
        )
        .order_by(definitions.c.ref)
    )
    return [
        DefinitionHead(definition_version(row), row["first_at"])
        for row in connection.execute(stmt).mappings()
    ]


def registered_packs(
    connection: Connection, *, after: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    """The registered packs (``ref``, ``version``, ``path``, ``registered_at``) after
    ``after``, in ref order; at most ``limit`` of them when given."""
    stmt = select(packs.c.ref, packs.c.version, packs.c.path, packs.c.registered_at)
    if after is not None:
        stmt = stmt.where(packs.c.ref > after)
    stmt = stmt.order_by(packs.c.ref)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [dict(row) for row in connection.execute(stmt).mappings()]


def pack_workflows(
    connection: Connection, refs: Sequence[str] | None = None
) -> dict[str, tuple[str, str | None]]:
    """``{workflow ref: (pack, pack path)}`` of the workflows registered as part of a pack
    (of those in ``refs``, when given): what the scheduler (or a pack reload) registered."""
    stmt = (
        select(actions.c.ref, actions.c.pack_ref, packs.c.path)
        .join(packs, packs.c.ref == actions.c.pack_ref, isouter=True)
        .where(actions.c.runner_type == RunnerType.WORKFLOW.value)
    )
    if refs is not None:
        stmt = stmt.where(actions.c.ref.in_(sorted(set(refs))))
    return {str(ref): (str(pack), path) for ref, pack, path in connection.execute(stmt).all()}
