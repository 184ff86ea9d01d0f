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
    """``treadle`` in ``workdir`` with the environment ``env`` (see ``treadle_environment``).

    With ``in_process``, each call runs the same app in this interpreter
    (:func:`run_in_process`) instead of a new one: what the command prints and its exit
    code are the same, without the second or so each new interpreter spends importing
    Treadle. Tests of the entry point itself, signals or processes left behind keep
    the subprocess (the default; :meth:`start` always is one).
    """

    def __init__(
        self,
        workdir: Path,
        env: Mapping[str, str],
        *,
        timeout: float = 120,
        in_process: bool = False,
    ) -> None:
        self.workdir = workdir
        self.env = dict(env)
        self.timeout = timeout
        self.in_process = in_process

    def __call__(
        self, *args: str | Path, code: int | None = None, timeout: float | None = None
    ) -> CliResult:
        """Run ``treadle ARGS``; when ``code`` is given, the exit code must be it."""
        argv = tuple(str(arg) for arg in args)
        if self.in_process:
            result = run_in_process(argv, self.workdir, self.env)
            if code is not None:
                assert result.code == code, str(result)
            return result
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


def run_in_process(argv: tuple[str, ...], workdir: Path, env: Mapping[str, str]) -> CliResult:
    """``treadle ARGV`` run by this interpreter as the console script would run it.

    In ``workdir``, with ``env`` (``TREADLE_*`` variables it lacks are unset); the root
    logger's handlers, the environment and the working folder are put back afterwards. An
    exception the command did not handle is printed to stderr with exit code 1, as Python
    would.
    """
    import logging
    import os
    import traceback

    from typer.testing import CliRunner

    from treadle.cli.main import build_app

    overrides: dict[str, str | None] = {k: None for k in os.environ if k.startswith("TREADLE_")}
    overrides.update({k: v for k, v in env.items() if os.environ.get(k) != v})
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    environment = dict(os.environ)  # a command may set variables (Flower's, say)
    before = Path.cwd()
    os.chdir(workdir)
    try:
        done = CliRunner().invoke(build_app(argv), list(argv), env=overrides, prog_name="treadle")
    finally:
        os.chdir(before)
        os.environ.clear()
        os.environ.update(environment)
        root.handlers[:] = handlers
        root.setLevel(level)
    stderr = done.stderr
    if done.exception is not None and not isinstance(done.exception, SystemExit):
        trace = "".join(traceback.format_exception(done.exception))
        stderr += trace
    return CliResult(argv, done.exit_code, done.stdout, stderr)
