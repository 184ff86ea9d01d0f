"""Entry point of the ``treadle`` command.

Command modules are imported lazily: ``treadle NAME`` registers only the modules of
``NAME`` (:mod:`treadle.cli.commands`), so heavy dependencies (SQLAlchemy, Celery) load
only for the commands that use them. Each call of :func:`build_app` makes a new typer
app (no app lives at module level), so tests can run the command in-process as often as
they like.
"""

from __future__ import annotations

from collections.abc import Sequence

import typer


def _root() -> None:
    """Keeps ``treadle <command>`` a command group even while only one command is registered."""


def build_app(args: Sequence[str] = ()) -> typer.Typer:
    """The ``treadle`` app with the commands ``args`` (the arguments after ``treadle``) need."""
    from treadle.cli import commands

    app = typer.Typer(
        name="treadle",
        help="Treadle: run YAML workflows from packs, on one machine or across many.",
        no_args_is_help=True,
        add_completion=False,
        pretty_exceptions_enable=False,
    )
    app.callback()(_root)
    commands.register(app, args[0] if args else None)
    return app


def main() -> None:
    import sys

    from treadle.common.heap import claim_process

    claim_process()  # this process is treadle's own: its start-up objects may be frozen
    build_app(sys.argv[1:])()
