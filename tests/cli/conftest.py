"""The ``treadle`` command as a user runs it: a subprocess in a scratch folder of its own.

``treadle`` is the console script installed next to the test's Python. Each test gets an
empty working folder and its own SQLite file (``TREADLE_DATABASE_URL``); other ``TREADLE_*``
variables of the calling environment are removed so they cannot change what is tested.
Output is captured, so the commands see no terminal and print line-by-line progress.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

TREADLE = Path(sys.executable).parent / "treadle"


@dataclass(frozen=True)
class Result:
    """What one ``treadle`` invocation did."""

    args: tuple[str, ...]
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def output(self) -> str:
        return self.stdout + self.stderr

    def __str__(self) -> str:  # shown when an assertion fails
        return f"treadle {' '.join(self.args)} -> {self.code}\n{self.stdout}\n{self.stderr}"


class Cli:
    """Runs ``treadle`` in ``workdir`` against the database file ``database``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.database = workdir / "t.db"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TREADLE_")}
        self.env["TREADLE_DATABASE_URL"] = f"sqlite:///{self.database}"

    def __call__(self, *args: str | Path, code: int | None = None) -> Result:
        """Run ``treadle ARGS``; when ``code`` is given, the exit code must be it."""
        argv = tuple(str(arg) for arg in args)
        done = subprocess.run(
            [str(TREADLE), *argv],
            capture_output=True,
            text=True,
            cwd=self.workdir,
            env=self.env,
            timeout=60,
            check=False,
        )
        result = Result(argv, done.returncode, done.stdout, done.stderr)
        if code is not None:
            assert result.code == code, str(result)
        return result

    def write(self, name: str, text: str) -> Path:
        """Write ``text`` (dedented) to ``name`` under the working folder."""
        path = self.workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path


@pytest.fixture
def treadle(tmp_path: Path) -> Cli:
    workdir = tmp_path / "work"
    workdir.mkdir()
    return Cli(workdir)
