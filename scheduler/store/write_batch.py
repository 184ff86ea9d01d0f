"""Several writes whose results nobody reads, sent to PostgreSQL as one statement.

A save writes its runs' rows, their changed executions and units, their events and the
attempts it dispatches: five statements, each a round trip to the server and back, while
the runs' row locks are held and their successors wait. On PostgreSQL they go as one
statement instead: each but the last becomes a data-modifying ``WITH`` (``WITH w0 AS
(UPDATE ...), w1 AS (INSERT ...) INSERT ...``), which PostgreSQL runs to completion
whether or not anything reads it, all with the same snapshot. That is only right for writes
that do not read what the others write and never touch the same row twice, which is what
:class:`WriteBatch` is given (:mod:`.bulk`'s ``unnest`` statements, one per table, or per
group of changed columns of distinct runs); each part is a ``text()`` statement with named
parameters.

One statement whose result is wanted may close the batch (``execute(then=...)``): the
outbox insert, whose ids come back (``RETURNING``). It is the combined statement's main
part, so its rows are the statement's result.

The parameters of part ``j`` are renamed ``w<j>_<name>``; the combined text depends only
on the parts' texts, so it is built once per shape and the server sees few distinct texts.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import Any

from sqlalchemy import Connection, CursorResult, TextClause, text

from treadle.scheduler.store import prepared


class WriteBatch:
    """Write-only statements collected in order, sent as one by :meth:`execute`."""

    def __init__(self, *, prepared: bool = False) -> None:
        self._parts: list[tuple[str, Mapping[str, Any]]] = []
        #: Sent as server-side prepared statements (:mod:`.prepared`).
        self._prepared = prepared

    def __len__(self) -> int:
        return len(self._parts)

    def add(self, statement: TextClause, params: Mapping[str, Any]) -> None:
        """Queue ``statement`` (a write to a table no other part writes) with ``params``."""
        self._parts.append((statement.text, params))

    def execute(
        self,
        connection: Connection,
        *,
        then: tuple[TextClause, Mapping[str, Any]] | None = None,
    ) -> CursorResult[Any] | None:
        """Send what was queued, as one statement (nothing when nothing was), and forget it.

        ``then`` (a statement and its parameters) goes last, as the statement's main part:
        its result is returned (``None`` when nothing was sent)."""
        parts, self._parts = self._parts, []
        if then is not None:
            parts.append((then[0].text, then[1]))
        if not parts:
            return None
        if len(parts) == 1:
            [(sql, params)] = parts
            return prepared.execute(connection, _plain(sql), params, prepared=self._prepared)
        merged = {
            f"w{index}_{name}": value
            for index, (_, params) in enumerate(parts)
            for name, value in params.items()
        }
        statement = _combined(tuple(sql for sql, _ in parts))
        return prepared.execute(connection, statement, merged, prepared=self._prepared)


@cache
def _plain(sql: str) -> TextClause:
    return text(sql)


@cache
def _combined(texts: tuple[str, ...]) -> TextClause:
    """``WITH w0 AS (<text 0>), ... <last text>``, parameters renamed per part."""
    renamed = [_renamed(sql, f"w{index}_") for index, sql in enumerate(texts)]
    ahead = ", ".join(f"w{index} AS ({sql})" for index, sql in enumerate(renamed[:-1]))
    return text(f"WITH {ahead} {renamed[-1]}")


def _renamed(sql: str, prefix: str) -> str:
    return prepared.NAMED_PARAMETER.sub(lambda found: f":{prefix}{found.group(1)}", sql)


__all__ = ["WriteBatch"]
