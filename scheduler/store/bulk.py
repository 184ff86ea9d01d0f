"""Updating many rows by primary key in as few round trips as each database allows.

SQLite runs a prepared ``UPDATE`` per row inside the process (``executemany`` is as fast as
it gets there). On PostgreSQL one statement updates every row: each column's new values
travel as one array and ``unnest`` turns the arrays back into rows to join on the key.
The statement's text depends only on the table and columns, so it is built once; the
server parses and plans it once per save instead of once per row, and SQLAlchemy does not
recompile a statement with thousands of parameters. That keeps saving 50 changed units of
a large with_items execution at a couple of milliseconds. Given a
:class:`~treadle.scheduler.store.write_batch.WriteBatch` (``writes=``, ``queue_*``), the
PostgreSQL statements are queued there to leave with a save's other writes as one.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

from sqlalchemy import Connection, Table, TextClause, Update, bindparam, text, update
from sqlalchemy.engine import Dialect

from treadle.scheduler.store.write_batch import WriteBatch


def bulk_update(
    connection: Connection,
    table: Table,
    keys: tuple[str, ...],
    rows: Sequence[Mapping[str, Any]],
    *,
    writes: WriteBatch | None = None,
) -> None:
    """Set the non-key columns of each row of ``rows``, found by its ``keys`` columns.

    With ``writes`` on PostgreSQL, the statement is queued there instead of sent."""
    if not rows:
        return
    if connection.dialect.name == "postgresql":
        _send(connection, writes, *_keyed(connection, table, keys, rows, _unnest_update))
        return
    names = tuple(name for name in rows[0] if name not in keys)
    connection.execute(
        _executemany_update(table, keys, names),
        [{**{f"k_{key}": row[key] for key in keys}, **{n: row[n] for n in names}} for row in rows],
    )


def bulk_upsert(
    connection: Connection,
    table: Table,
    keys: tuple[str, ...],
    inserted: Sequence[Mapping[str, Any]],
    updated: Sequence[Mapping[str, Any]],
    *,
    writes: WriteBatch | None = None,
) -> None:
    """Insert the rows of ``inserted`` and update those of ``updated`` (by ``keys``).

    On PostgreSQL both go in one statement (``INSERT ... SELECT FROM unnest ... ON
    CONFLICT DO UPDATE``): one round trip where an insert and an update were two. The rows
    must all have the same columns, and no key twice. With ``writes`` on PostgreSQL, the
    statement is queued there instead of sent.
    """
    postgres = connection.dialect.name == "postgresql"
    if not (inserted and updated) or not postgres:
        if inserted:
            bulk_insert(connection, table, inserted, writes=writes)
        bulk_update(connection, table, keys, updated, writes=writes)
        return
    rows = [*inserted, *updated]
    _send(connection, writes, *_keyed(connection, table, keys, rows, _unnest_upsert))


def bulk_insert(
    connection: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    writes: WriteBatch | None = None,
    condition: str = "",
) -> None:
    """Insert ``rows`` (all with the same columns): queued in ``writes`` on PostgreSQL
    when given (``INSERT ... SELECT FROM unnest``, with ``condition``, our own SQL, as its
    ``WHERE``), else one ``executemany`` (``condition`` unused)."""
    if not rows:
        return
    if writes is None or connection.dialect.name != "postgresql":
        connection.execute(table.insert(), list(rows))
        return
    columns = tuple(rows[0])
    statement, processors = _unnest_insert(table, columns, connection.dialect)
    if condition:
        statement = _conditioned(statement.text, condition, "WHERE")
    writes.add(statement, _arrays(rows, columns, processors))


def ordered_insert(
    connection: Connection, table: Table, rows: Sequence[Mapping[str, Any]], returning: str
) -> tuple[TextClause, dict[str, list[Any]]]:
    """PostgreSQL: a statement inserting ``rows`` (all with the same columns) in their order
    and returning each one's ``returning`` column (a serial key), and its parameters.

    The rows are inserted in the order of ``rows`` (``WITH ORDINALITY ... ORDER BY``), so a
    sequence numbers them in that order: the returned keys, sorted, are the rows' keys in
    turn (:func:`in_order`)."""
    columns = tuple(rows[0])
    statement, processors = _ordered_insert(table, columns, returning, connection.dialect)
    return statement, _arrays(rows, columns, processors)


def in_order(keys: Sequence[int]) -> list[int]:
    """The serial keys an :func:`ordered_insert` returned, in the order of its rows."""
    return sorted(keys)


def queue_replace(
    writes: WriteBatch,
    connection: Connection,
    table: Table,
    keys: tuple[str, ...],
    rows: Sequence[Mapping[str, Any]],
) -> None:
    """Queue in ``writes`` (PostgreSQL) an insert of ``rows`` that replaces the non-key
    columns of the rows whose ``keys`` exist (``INSERT ... ON CONFLICT DO UPDATE``)."""
    if rows:
        writes.add(*_keyed(connection, table, keys, rows, _unnest_upsert))


def queue_update(
    writes: WriteBatch,
    connection: Connection,
    table: Table,
    keys: tuple[str, ...],
    rows: Sequence[Mapping[str, Any]],
    *,
    condition: str = "",
    extra: Mapping[str, Any] | None = None,
) -> None:
    """Queue in ``writes`` (PostgreSQL) the update of ``rows`` by ``keys``, as
    :func:`bulk_update` sends it; ``condition`` (our own SQL, its parameters in ``extra``)
    is ANDed to its ``WHERE``."""
    if not rows:
        return
    statement, params = _keyed(connection, table, keys, rows, _unnest_update)
    if condition:
        statement = _conditioned(statement.text, condition, "AND")
    writes.add(statement, {**params, **(extra or {})})


@cache
def _conditioned(sql: str, condition: str, joiner: str) -> TextClause:
    return text(f"{sql} {joiner} {condition}")


def _send(
    connection: Connection,
    writes: WriteBatch | None,
    statement: TextClause,
    params: dict[str, list[Any]],
) -> None:
    if writes is None:
        connection.execute(statement, params)
    else:
        writes.add(statement, params)


def _keyed(
    connection: Connection,
    table: Table,
    keys: tuple[str, ...],
    rows: Sequence[Mapping[str, Any]],
    build: KeyedBuilder,
) -> tuple[TextClause, dict[str, list[Any]]]:
    """``build``'s statement over ``keys`` and the other columns of ``rows[0]``, and its
    parameters for ``rows``."""
    names = tuple(name for name in rows[0] if name not in keys)
    statement, processors = build(table, keys, names, connection.dialect)
    return statement, _arrays(rows, (*keys, *names), processors)


def _arrays(
    rows: Sequence[Mapping[str, Any]], columns: tuple[str, ...], processors: Processors
) -> dict[str, list[Any]]:
    """The ``unnest`` statements' parameters: ``p<i>``, the values of column ``i``."""
    return {f"p{i}": _column_values(rows, name, processors[i]) for i, name in enumerate(columns)}


def _column_values(
    rows: Sequence[Mapping[str, Any]], name: str, processor: Callable[[Any], Any] | None
) -> list[Any]:
    if processor is None:
        return [row[name] for row in rows]
    return [processor(row[name]) for row in rows]


@cache
def _executemany_update(table: Table, keys: tuple[str, ...], names: tuple[str, ...]) -> Update:
    # The keys are bound as ``k_<column>``: SQLAlchemy reserves column names for SET.
    return (
        update(table)
        .where(*(table.c[key] == bindparam(f"k_{key}") for key in keys))
        .values({name: bindparam(name) for name in names})
    )


Processors = tuple[Callable[[Any], Any] | None, ...]
#: Builds an ``unnest`` statement keyed by some columns: (table, keys, other columns, dialect).
KeyedBuilder = Callable[
    [Table, tuple[str, ...], tuple[str, ...], Dialect], tuple[TextClause, Processors]
]


def _unnest_source(
    table: Table, columns: tuple[str, ...], dialect: Dialect
) -> tuple[str, str, Processors]:
    """``unnest(CAST(:p0 AS type[]), ...)`` over ``columns``, their quoted list, and per
    column the type's bind processor (JSON serialisation, UTC conversion) to apply to each
    value, since array elements bypass SQLAlchemy's types."""
    quote = dialect.identifier_preparer.quote
    arrays = ", ".join(
        f"CAST(:p{i} AS {table.c[name].type.compile(dialect=dialect)}[])"
        for i, name in enumerate(columns)
    )
    listed = ", ".join(quote(c) for c in columns)
    processors = tuple(table.c[name].type.bind_processor(dialect) for name in columns)
    return f"unnest({arrays})", listed, processors


@cache
def _unnest_update(
    table: Table, keys: tuple[str, ...], names: tuple[str, ...], dialect: Dialect
) -> tuple[TextClause, Processors]:
    """``UPDATE t SET c = u.c ... FROM unnest(:p0::type[], ...) u WHERE t.key = u.key``,
    and the bind processors of its parameters (see :func:`_unnest_source`)."""
    quote = dialect.identifier_preparer.quote
    source, listed, processors = _unnest_source(table, (*keys, *names), dialect)
    assignments = ", ".join(f"{quote(name)} = u.{quote(name)}" for name in names)
    matches = " AND ".join(f"t.{quote(key)} = u.{quote(key)}" for key in keys)
    # Only our own table and column names (quoted) go into the text; values are parameters.
    sql = (
        f"UPDATE {quote(table.name)} AS t SET {assignments} "  # noqa: S608
        f"FROM {source} AS u({listed}) WHERE {matches}"
    )
    return text(sql), processors


@cache
def _unnest_insert(
    table: Table, columns: tuple[str, ...], dialect: Dialect
) -> tuple[TextClause, Processors]:
    """``INSERT INTO t (...) SELECT * FROM unnest(:p0::type[], ...)``, and the bind
    processors of its parameters."""
    quote = dialect.identifier_preparer.quote
    source, listed, processors = _unnest_source(table, columns, dialect)
    # Only our own table and column names (quoted) go into the text; values are parameters.
    sql = f"INSERT INTO {quote(table.name)} ({listed}) SELECT * FROM {source} AS u({listed})"  # noqa: S608
    return text(sql), processors


@cache
def _ordered_insert(
    table: Table, columns: tuple[str, ...], returning: str, dialect: Dialect
) -> tuple[TextClause, Processors]:
    """``INSERT INTO t (...) SELECT ... FROM unnest(...) WITH ORDINALITY ... ORDER BY
    ordinality RETURNING <returning>``, and the bind processors of its parameters."""
    quote = dialect.identifier_preparer.quote
    source, listed, processors = _unnest_source(table, columns, dialect)
    # Only our own table and column names (quoted) go into the text; values are parameters.
    sql = (
        f"INSERT INTO {quote(table.name)} ({listed}) "  # noqa: S608
        f"SELECT {listed} FROM {source} WITH ORDINALITY AS u({listed}, treadle_row) "
        f"ORDER BY treadle_row RETURNING {quote(returning)}"
    )
    return text(sql), processors


@cache
def _unnest_upsert(
    table: Table, keys: tuple[str, ...], names: tuple[str, ...], dialect: Dialect
) -> tuple[TextClause, Processors]:
    """``INSERT INTO t (...) SELECT * FROM unnest(:p0::type[], ...) ON CONFLICT (keys) DO
    UPDATE SET c = excluded.c ...``, and the bind processors of its parameters."""
    quote = dialect.identifier_preparer.quote
    source, listed, processors = _unnest_source(table, (*keys, *names), dialect)
    assignments = ", ".join(f"{quote(name)} = excluded.{quote(name)}" for name in names)
    conflict = ", ".join(quote(key) for key in keys)
    # Only our own table and column names (quoted) go into the text; values are parameters.
    sql = (
        f"INSERT INTO {quote(table.name)} ({listed}) "  # noqa: S608
        f"SELECT * FROM {source} AS u({listed}) "
        f"ON CONFLICT ({conflict}) DO UPDATE SET {assignments}"
    )
    return text(sql), processors
