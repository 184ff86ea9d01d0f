"""The static checks are part of the test suite: lint, formatting, types and import layers.

Each runs the tool as a developer would, from the repository root, and fails with the
tool's own report.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
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


def test_mypy_strict_on_the_whole_package() -> None:
    result = _run(str(BIN / "mypy"), "-p", "treadle")
    assert result.returncode == 0, result.stdout + result.stderr


#: The most lines a module may have before it should be split by responsibility.
MAX_MODULE_LINES = 450

#: Modules allowed to be longer, each with the reason why. A module on this list that is no
#: longer over the limit fails the test too: take it off, so the list stays true.
LONG_MODULES: dict[str, str] = {}


def _modules() -> Iterator[str]:
    """Every Python module of the package, by its path under the repository root.

    ``src/treadle`` is walked without following its links to the top-level folders, which
    are walked themselves.
    """
    for folder in ("common", "scheduler", "worker", "src/treadle"):
        for directory, _dirs, files in os.walk(ROOT / folder):
            for name in files:
                if name.endswith(".py"):
                    yield (Path(directory) / name).relative_to(ROOT).as_posix()


def test_no_module_is_a_god_module() -> None:
    lines = {
        path: len((ROOT / path).read_text(encoding="utf-8").splitlines()) for path in _modules()
    }
    too_long = [
        f"{path} ({count} lines)"
        for path, count in sorted(lines.items())
        if count > MAX_MODULE_LINES and path not in LONG_MODULES
    ]
    no_longer_long = [
        f"{path} ({lines[path]} lines)" if path in lines else f"{path} (no such module)"
        for path in sorted(LONG_MODULES)
        if lines.get(path, 0) <= MAX_MODULE_LINES
    ]
    assert not too_long, "split these by responsibility: " + ", ".join(too_long)
    assert not no_longer_long, "take these off LONG_MODULES: " + ", ".join(no_longer_long)
