"""The shape every administrative CLI change shares (schedules, rules): one audited
transaction on the database, a missing object exiting 1 and a refused change exiting 2
with the reason, and tables printed in aligned columns."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import typer

from treadle.cli.support import ExitCode, command_database, fail, identity


@contextmanager
def audited_change(
    action: str, name: str, details: dict[str, Any] | None = None
) -> Iterator[tuple[Any, Any, Any]]:
    """``(store, uow, principal)`` of a transaction recorded in the audit log as ``action``
    on ``name``; NotFound exits 1, a ParameterError or ConflictError exits 2."""
    from treadle.clientlib.audit import Change, audited, database_principal
    from treadle.common.errors import ConflictError, NotFound, ParameterError
    from treadle.scheduler.store.base import utc_now

    principal = database_principal(identity())
    with command_database(False) as store:
        try:
            change = Change(action, name, details)
            with audited(store.unit_of_work, principal, change, clock=utc_now) as uow:
                yield store, uow, principal
        except NotFound as exc:
            fail(str(exc), ExitCode.FAILED)
        except (ParameterError, ConflictError) as exc:
            fail(str(exc))


def print_table(rows: Sequence[tuple[str, ...]]) -> None:
    """Rows in columns as wide as their widest cell, two spaces apart."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        typer.echo("  ".join(cells).rstrip())
