"""What a store test's engine sends, watched: the statements, and the rows they wrote.

``sent_statements`` lists the statements (a prepared one as the text it runs);
``WriteLog`` counts the rows each INSERT/UPDATE/DELETE carried, per table, so tests can
prove what a save wrote; ``batch_parts`` splits a save's combined statement
(``write_batch``) into its parts.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, Insert, TextClause, event

from treadle.scheduler.store import prepared

_CHANGE = re.compile(r'^\s*(UPDATE|DELETE\s+FROM)\s+"?(\w+)"?', re.IGNORECASE)
# One statement inserting and updating rows (``bulk_upsert`` on PostgreSQL), counted as upsert.
_UPSERT = re.compile(r'^\s*INSERT\s+INTO\s+"?(\w+)"?.*\sON CONFLICT\b.*\sDO UPDATE\s', re.S)
# A single ``INSERT ... SELECT * FROM unnest(...)`` (``bulk_insert`` queued alone).
_UNNEST_INSERT = re.compile(r'^\s*INSERT\s+INTO\s+"?\w+"?\s*\([^)]*\)\s+SELECT \* FROM unnest')
_WRITE = re.compile(r'^\s*(INSERT\s+INTO|UPDATE)\s+"?(\w+)"?')


# One element of an array literal (``array_literals``): quoted, with escapes, or bare.
_ELEMENT = re.compile(r'"(?:[^"\\]|\\.)*"|[^,{}"]+')


def _length(values: Any) -> int:
    """How many rows an ``unnest`` array parameter carries: a list, or the array literal
    it is sent as (``{"a","b"}``)."""
    if isinstance(values, str):
        return len(_ELEMENT.findall(values[1:-1]))
    return len(values)


def batch_parts(statement: str) -> list[str] | None:
    """The parts of a save's writes sent as one statement (``write_batch``, PostgreSQL:
    ``WITH w0 AS (...), w1 AS (...) <last>``), or a lone unnest insert; else None."""
    if not statement.startswith("WITH w0 AS ("):
        return [statement] if _UNNEST_INSERT.match(statement) else None
    parts: list[str] = []
    rest = statement[len("WITH ") :]
    while rest.startswith(f"w{len(parts)} AS ("):
        depth, opened = 0, rest.index("(")
        for end in range(opened, len(rest)):
            depth += {"(": 1, ")": -1}.get(rest[end], 0)
            if depth == 0:
                break
        parts.append(rest[opened + 1 : end])
        rest = rest[end + 1 :].lstrip().removeprefix(",").lstrip()
    parts.append(rest)
    return parts


class WriteLog:
    """Rows each data-changing statement wrote, as ``(operation, table) -> rows``.

    UPDATE and DELETE count the rows the database reports it changed (the cursor's
    ``rowcount``), whatever the statement's shape (one per row, ``executemany``, one
    ``UPDATE ... FROM unnest(...)``); INSERT counts the rows sent.
    """

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.rows: Counter[tuple[str, str]] = Counter()
        event.listen(engine, "after_execute", self._inserted)
        event.listen(engine, "after_cursor_execute", self._changed)

    def _inserted(
        self, _conn: Any, clause: Any, multiparams: Any, _params: Any, _opts: Any, _result: Any
    ) -> None:
        if isinstance(clause, Insert):
            self.rows[("insert", clause.table.name)] += len(multiparams) if multiparams else 1

    def _changed(
        self,
        conn: Any,
        cursor: Any,
        statement: str,
        parameters: Any,
        _context: Any,
        executemany: bool,
    ) -> None:
        if statement.startswith(f"PREPARE {prepared.PREFIX}"):
            return  # writes nothing: its EXECUTEs do
        statement = " ".join(prepared.original(statement).split())
        if self._batched(statement, parameters):
            return
        upsert = _UPSERT.match(statement)
        compiled = getattr(_context, "compiled", None)
        if upsert is not None and isinstance(getattr(compiled, "statement", None), TextClause):
            # (``Insert`` constructs are counted as inserts by ``_inserted``.)
            self.rows[("upsert", upsert.group(1))] += cursor.rowcount
            return
        match = _CHANGE.match(statement)
        if match is None:
            return
        operation = match.group(1).split()[0].lower()
        if " RETURNING " in statement.upper() or (
            executemany and conn.dialect.name == "postgresql"  # execute_batch: no rowcount
        ):
            count = len(parameters) if executemany else 1
        else:
            count = cursor.rowcount
            assert count >= 0, f"no rowcount for {statement[:60]}"
        self.rows[(operation, match.group(2))] += count

    def _batched(self, statement: str, parameters: Any) -> bool:
        """A save's writes sent as one statement: each part counts the rows it was sent
        (its ``unnest`` arrays' length); the database reports a count for the last only."""
        parts = batch_parts(statement)
        if parts is None:
            return False
        for index, part in enumerate(parts):
            found = _WRITE.match(part)
            assert found is not None, f"not a write: {part[:60]}"
            operation = "upsert" if " ON CONFLICT " in part else found.group(1).split()[0].lower()
            prefix = f"w{index}_" if len(parts) > 1 else ""
            self.rows[(operation, found.group(2))] += _length(parameters[f"{prefix}p0"])
        return True

    def clear(self) -> None:
        self.rows.clear()

    def of(self, table: str) -> dict[str, int]:
        return {op: n for (op, name), n in self.rows.items() if name == table and n}

    def close(self) -> None:
        event.remove(self.engine, "after_execute", self._inserted)
        event.remove(self.engine, "after_cursor_execute", self._changed)


@contextmanager
def sent_statements(engine: Engine, *, as_prepared: bool = False) -> Iterator[list[str]]:
    """Every statement ``engine`` sends meanwhile, whitespace collapsed: a prepared one as
    the text it runs, a connection's one-time ``PREPARE`` left out (``as_prepared``:
    both as they are sent)."""
    sent: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        if not as_prepared:
            if statement.startswith(f"PREPARE {prepared.PREFIX}"):
                return
            statement = prepared.original(statement)
        sent.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", record)
