"""Entry point of the ``treadle`` command.

Command modules are imported lazily by typer callbacks so that ``treadle --help`` and
``treadle validate`` start quickly; heavy dependencies (SQLAlchemy, Celery) load only for
the commands that use them.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="treadle",
    help="Treadle: run YAML workflows from packs, on one machine or across many.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Keeps ``treadle <command>`` a command group even while only one command is registered."""


def _register(argv: list[str]) -> None:
    from treadle.cli import commands

    commands.register(app, argv[1] if len(argv) > 1 else None)


def main() -> None:
    import sys

    _register(sys.argv)
    app()
