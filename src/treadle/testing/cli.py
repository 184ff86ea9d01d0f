"""Running the real ``treadle`` command from tests: one invocation, its exit code and output.

Tests of the command line run it as a user does, as a subprocess of this interpreter's
environment, in a working folder of the test's own and with only the ``TREADLE_*``
settings the test gives (those of the calling process are removed), so no test depends on
the shell it was started from.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["TREADLE", "CliResult", "TreadleCli"]

#: The ``treadle`` script installed beside this interpreter.
TREADLE = Path(sys.executable).parent / "treadle"


@dataclass(frozen=True)
class CliResult:
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

    def __str__(self) -> str:  # shown when an assertion about it fails
        return f"treadle {' '.join(self.args)} -> {self.code}\n{self.stdout}\n{self.stderr}"


class TreadleCli:
    """``treadle`` in ``workdir`` with the environment ``env`` (see ``treadle_environment``)."""

    def __init__(self, workdir: Path, env: Mapping[str, str], *, timeout: float = 120) -> None:
        self.workdir = workdir
        self.env = dict(env)
        self.timeout = timeout

    def __call__(
        self, *args: str | Path, code: int | None = None, timeout: float | None = None
    ) -> CliResult:
        """Run ``treadle ARGS``; when ``code`` is given, the exit code must be it."""
        argv = tuple(str(arg) for arg in args)
        done = subprocess.run(
            [str(TREADLE), *argv],
            capture_output=True,
            text=True,
            cwd=self.workdir,
            env=self.env,
            timeout=self.timeout if timeout is None else timeout,
            check=False,
        )
        result = CliResult(argv, done.returncode, done.stdout, done.stderr)
        if code is not None:
            assert result.code == code, str(result)
        return result

    def start(self, *args: str | Path) -> subprocess.Popen[str]:
        """``treadle ARGS`` in the background; the caller waits for it (or kills it by pid)."""
        return subprocess.Popen(
            [str(TREADLE), *(str(arg) for arg in args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=self.workdir,
            env=self.env,
        )

    def write(self, name: str, text: str) -> Path:
        """Write ``text`` (dedented) to ``name`` under the working folder."""
        path = self.workdir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")
        return path
