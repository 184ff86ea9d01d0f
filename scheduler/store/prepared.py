"""A scheduler step's statements as server-side prepared statements (PostgreSQL).

psycopg2 sends every statement as text, which PostgreSQL parses, analyses and plans each
time. A step's two statements are long (a data-modifying ``WITH`` per table, ``unnest``
over each column's array), and their parsing and planning cost the server more than
running them: measured with ``log_parser_stats`` and ``log_planner_stats`` on a chain,
about 1.5 ms a step against 1 ms of execution, all of it on the path from one task to
the next. Prepared once per connection (``PREPARE``) and then run with ``EXECUTE``, a
statement is parsed once, and after five runs PostgreSQL may keep a generic plan.

Prepared statements belong to the server session: which ones a connection holds is kept
in its ``info`` (SQLAlchemy clears it when the connection is replaced), and ``PREPARE``
is not undone by a rollback. A pooler that hands one session's statements to another
(PgBouncer in transaction mode) breaks them: ``TREADLE_PREPARED_STATEMENTS=false`` sends
the same text as before instead (docs/deployment.md).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import Connection, CursorResult, TextClause

from treadle.scheduler.store.array_literals import CAST, with_array_literals

#: A named parameter in a ``text()`` statement (not a ``::`` cast).
NAMED_PARAMETER = re.compile(r"(?<![:\w]):(\w+)")
#: Where a connection's ``info`` lists the statements its session has prepared.
_HELD = "treadle_prepared"
#: The prefix of every statement name; ``EXECUTE <name>`` and ``PREPARE <name>`` start so.
PREFIX = "treadle_"
#: Each name given, and the text it stands for (:func:`original`).
_TEXTS: dict[str, str] = {}


@dataclass(frozen=True)
class _Prepared:
    """A ``text()`` statement as ``PREPARE`` and ``EXECUTE`` texts (psycopg2's format)."""

    prepare: str
    execute: str
    name: str


@cache
def _prepared(sql: str) -> _Prepared:
    if "%" in sql:  # psycopg2 would read it as a placeholder
        raise ValueError("a prepared statement's text must not contain '%'")
    names: list[str] = []

    def numbered(found: re.Match[str]) -> str:
        name = found.group(1)
        if name not in names:
            names.append(name)
        return f"${names.index(name) + 1}"

    body = NAMED_PARAMETER.sub(numbered, sql)
    # EXECUTE coerces its arguments only implicitly: each is cast as the statement casts it
    # (a list arrives as an array literal, or as ARRAY[...], of text, which becomes json[]
    # only by a cast).
    types = dict(CAST.findall(sql))
    arguments = ", ".join(
        f"CAST(%({n})s AS {types[n]})" if n in types else f"%({n})s" for n in names
    )
    name = PREFIX + hashlib.sha256(sql.encode()).hexdigest()[:24]
    _TEXTS[name] = sql
    return _Prepared(
        prepare=f"PREPARE {name} AS {body}",
        execute=f"EXECUTE {name}({arguments})" if names else f"EXECUTE {name}",
        name=name,
    )


def execute(
    connection: Connection,
    statement: TextClause,
    params: Mapping[str, Any],
    *,
    prepared: bool,
) -> CursorResult[Any]:
    """Run ``statement`` (a ``text()`` with named parameters) with ``params``: prepared
    on PostgreSQL when ``prepared``, else as it is. On PostgreSQL the lists it casts to
    array types go as array literals either way (:mod:`.array_literals`)."""
    if connection.dialect.name != "postgresql":
        return connection.execute(statement, dict(params))
    params = with_array_literals(statement.text, params)
    if not prepared:
        return connection.execute(statement, params)
    found = _prepared(statement.text)
    held: set[str] = connection.connection.info.setdefault(_HELD, set())
    if found.name not in held:
        connection.exec_driver_sql(found.prepare)
        held.add(found.name)
    return connection.exec_driver_sql(found.execute, params)


def original(statement: str) -> str:
    """What ``statement`` (as sent to the server) runs: for ``EXECUTE treadle_...`` or
    ``PREPARE treadle_...`` the text prepared under that name, with its named parameters
    as in ``text()``; any other statement as it is. For logs and tests."""
    for verb in ("EXECUTE ", "PREPARE "):
        if statement.startswith(verb + PREFIX):
            name = statement[len(verb) :].split("(", 1)[0].split(" ", 1)[0]
            return _TEXTS.get(name, statement)
    return statement


__all__ = ["NAMED_PARAMETER", "PREFIX", "execute", "original"]
