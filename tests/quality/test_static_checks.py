"""The static checks are part of the test suite: lint, formatting, types and import layers.

Each runs the tool as a developer would, from the repository root, and fails with the
tool's own report.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=600, check=False)


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param(("ruff", "check", "."), id="ruff-check"),
        pytest.param(("ruff", "format", "--check", "."), id="ruff-format"),
        pytest.param(("lint-imports",), id="import-linter"),
    ],
)
def test_tool_is_clean(argv: tuple[str, ...]) -> None:
    result = _run(str(BIN / argv[0]), *argv[1:])
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_on_common_and_the_core() -> None:
    result = _run(str(BIN / "mypy"), "-p", "treadle.common", "-p", "treadle.scheduler.core")
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_module_is_a_god_module() -> None:
    too_long = [
        f"{path.relative_to(ROOT)} ({count} lines)"
        for folder in ("common", "scheduler", "worker", "src/treadle/cli", "src/treadle/embedded")
        for path in (ROOT / folder).rglob("*.py")
        if (count := len(path.read_text(encoding="utf-8").splitlines())) > 600
    ]
    assert not too_long, "split these by responsibility: " + ", ".join(too_long)
