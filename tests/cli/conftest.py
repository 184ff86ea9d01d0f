"""The ``treadle`` command as a user runs it: a subprocess in a scratch folder of its own.

``treadle`` is the console script installed next to the test's Python. Each test gets an
empty working folder and its own SQLite file (``TREADLE_DATABASE_URL``); other ``TREADLE_*``
variables of the calling environment are removed so they cannot change what is tested.
Output is captured, so the commands see no terminal and print line-by-line progress.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from treadle.testing.cli import CliResult, TreadleCli
from treadle.testing.processes import treadle_environment

TREADLE = Path(sys.executable).parent / "treadle"


Result = CliResult


class Cli(TreadleCli):
    """``treadle`` in ``workdir`` on the SQLite file ``workdir/t.db``."""

    def __init__(self, workdir: Path) -> None:
        self.database = workdir / "t.db"
        env = treadle_environment(database_url=f"sqlite:///{self.database}")
        super().__init__(workdir, env, timeout=60, in_process=True)


@pytest.fixture
def treadle(tmp_path: Path) -> Cli:
    workdir = tmp_path / "work"
    workdir.mkdir()
    return Cli(workdir)
