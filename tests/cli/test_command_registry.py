"""``treadle NAME`` registers only NAME's modules, and the table that says which is complete."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib import import_module
from pathlib import Path

import typer

from treadle.cli.commands import MODULES_BY_COMMAND
from treadle.scheduler.store import Store


def _top_level_names(app: typer.Typer) -> set[str]:
    commands = {
        c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands
    }
    return commands | {g.name or "" for g in app.registered_groups}


def test_each_command_is_registered_by_exactly_the_modules_the_table_names() -> None:
    package = Path(import_module("treadle.cli").__file__ or "").parent
    on_disk = {p.stem for p in package.glob("*_cmd.py")}
    listed = {m for modules in MODULES_BY_COMMAND.values() for m in modules}
    # runs_why_cmd is registered by runs_cmd itself
    assert on_disk - listed <= {"runs_why_cmd"}, "a command module the table does not name"
    for name, modules in MODULES_BY_COMMAND.items():
        app = typer.Typer()
        for module in modules:
            import_module(f"treadle.cli.{module}").register(app)
        assert _top_level_names(app) == {name}, name


def test_a_command_on_a_current_database_loads_neither_alembic_nor_other_commands(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'treadle.db'}"
    Store.open(url).close()
    code = textwrap.dedent(
        f"""\
        import os, sys
        os.environ["TREADLE_DATABASE_URL"] = {url!r}
        sys.argv = ["treadle", "runs", "list"]
        from treadle.cli.main import main
        try:
            main()
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
        loaded = [m for m in ("alembic", "treadle.cli.api_cmd", "treadle.cli.worker_cmd")
                  if m in sys.modules]
        print("loaded:" + ",".join(loaded))
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1] == "loaded:"
