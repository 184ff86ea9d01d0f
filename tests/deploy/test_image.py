"""The Dockerfile, checked without a Docker engine: what it says (multi-stage, a base pinned
by digest, a non-root user with the chart's uid, no health check for all services, nothing
to build with in the final stage), and what it does, as far as it can be done here: the
wheel built from exactly the files it copies, installed in a clean virtual environment and
run by a non-root user, each service's command and health check as the image runs them,
and ``treadle db upgrade`` against a throwaway database.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from treadle.common.settings import Settings
from treadle.scheduler.store.migrate import head_revision
from treadle.testing import throwaway_postgres_database

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
#: The uid and gid the image runs as: the chart's pod security context.
CHART_VALUES = ROOT / "helm" / "treadle" / "values.yaml"


@dataclass(frozen=True)
class Instruction:
    stage: int  # 0 before the first FROM, then 1, 2 ...
    keyword: str
    arguments: str


def instructions() -> list[Instruction]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text(encoding="utf-8"))
    found: list[Instruction] = []
    stage = 0
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, arguments = line.partition(" ")
        if keyword.upper() == "FROM":
            stage += 1
        found.append(Instruction(stage, keyword.upper(), arguments.strip()))
    return found


def final_stage() -> list[Instruction]:
    everything = instructions()
    last = max(i.stage for i in everything)
    return [i for i in everything if i.stage == last]


def test_two_stages_on_one_base_pinned_by_digest() -> None:
    [base] = [
        i.arguments for i in instructions() if i.keyword == "ARG" and "PYTHON_IMAGE" in i.arguments
    ]
    assert re.fullmatch(
        r"PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", base
    ), base
    froms = [i.arguments for i in instructions() if i.keyword == "FROM"]
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE} AS runtime"]


def test_the_final_stage_runs_as_the_charts_non_root_user() -> None:
    security = yaml.safe_load(CHART_VALUES.read_text(encoding="utf-8"))["podSecurityContext"]
    uid, gid = security["runAsUser"], security["runAsGroup"]
    [user] = [i.arguments for i in final_stage() if i.keyword == "USER"]
    assert user == f"{uid}:{gid}"
    [setup] = [
        i.arguments for i in final_stage() if i.keyword == "RUN" and "useradd" in i.arguments
    ]
    assert f"--gid {gid}" in setup
    assert f"--uid {uid}" in setup


def test_no_image_wide_health_check_and_no_build_tools_in_the_final_stage() -> None:
    assert [i for i in instructions() if i.keyword == "HEALTHCHECK"] == []
    final = " ".join(i.arguments for i in final_stage() if i.keyword == "RUN")
    for tool in ("apt-get install", "gcc", "build-essential", "pip install", "[dev"):
        assert tool not in final, tool
    copies = [i.arguments for i in final_stage() if i.keyword == "COPY"]
    assert copies == ["--from=build /opt/treadle /opt/treadle"]  # the environment, no sources


def test_every_treadle_variable_of_the_image_is_a_setting() -> None:
    env = " ".join(i.arguments for i in final_stage() if i.keyword == "ENV")
    names = set(re.findall(r"\b(TREADLE_[A-Z_]+)=", env))
    assert names == {"TREADLE_LOG_FORMAT", "TREADLE_HEALTH_DIR"}
    assert {name.removeprefix("TREADLE_").lower() for name in names} <= set(Settings.model_fields)


def build_context() -> list[str]:
    """The paths the build stage copies (``COPY SRC... DEST``)."""
    [build] = {i.stage for i in instructions() if i.arguments.endswith("AS build")}
    sources: list[str] = []
    for instruction in instructions():
        if instruction.stage == build and instruction.keyword == "COPY":
            sources += instruction.arguments.split()[:-1]
    return sources


def test_the_build_copies_every_folder_the_package_links_to_and_ignores_none() -> None:
    copied = set(build_context())
    linked = {
        os.readlink(path).removeprefix("../../")
        for path in (ROOT / "src" / "treadle").iterdir()
        if path.is_symlink()
    }
    assert linked == {"common", "scheduler", "worker", "packs", "migrations"}
    assert copied == linked | {"src", "pyproject.toml", "README.md"}
    ignored = {
        line.strip()
        for line in DOCKERIGNORE.read_text().splitlines()
        if line.strip()[:1] not in "#"
    }
    assert copied & ignored == set()
    assert {"tests", ".venv", ".git"} <= ignored


# -- the image's contents, installed and run here -------------------------------------------


def _non_root() -> list[str]:
    """The prefix running a command as uid and gid 10001, as the image does."""
    if os.getuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv (util-linux): cannot drop to uid 10001")
    return [setpriv, "--reuid=10001", "--regid=10001", "--clear-groups"]


@pytest.fixture(scope="module")
def installed() -> Iterator[Path]:
    """A clean virtual environment holding the wheel built from the build context (with
    the image's extras), readable by everyone; its bin folder."""
    top = Path(tempfile.mkdtemp(prefix="treadle-image-"))
    top.chmod(0o755)
    try:
        context = top / "context"
        context.mkdir()
        for source in build_context():
            origin = ROOT / source
            if origin.is_dir():
                shutil.copytree(
                    origin,
                    context / source,
                    symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"),
                )
            else:
                shutil.copy2(origin, context / source)
        wheels = top / "wheels"
        pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
        subprocess.run(
            [*pip, "wheel", "--no-deps", "--wheel-dir", str(wheels), str(context)],
            check=True, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        [wheel] = wheels.glob("treadle-*.whl")
        venv = top / "venv"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        subprocess.run(
            [*pip, "--python", str(venv / "bin" / "python"), "install", "--no-compile",
             f"{wheel}[flower,otel]"],
            check=True, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
        # pip compiles as the image's build does, but one file at a time: on every core
        # instead (the non-root user cannot write the bytecode caches itself)
        subprocess.run(
            [str(venv / "bin" / "python"), "-m", "compileall", "-q", "-j", "0", str(venv / "lib")],
            check=True, capture_output=True, timeout=300,
        )  # fmt: skip
        yield venv / "bin"
    finally:
        shutil.rmtree(top, ignore_errors=True)


def run_as_the_image(bin_dir: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    home = Path(tempfile.mkdtemp(prefix="treadle-home-"))
    home.chmod(0o777)
    try:
        environment = {
            "PATH": f"{bin_dir}:/usr/bin:/bin",
            "HOME": str(home),
            "TREADLE_LOG_FORMAT": "json",
            "TREADLE_HEALTH_DIR": str(home / "health"),
            **env,
        }
        return subprocess.run(
            [*_non_root(), str(bin_dir / "treadle"), *argv],
            cwd=home, env=environment, capture_output=True, text=True, timeout=120, check=False,
        )  # fmt: skip
    finally:
        shutil.rmtree(home, ignore_errors=True)


SERVICES = [
    ["scheduler", "--help"],
    ["worker", "--help"],
    ["beat", "--help"],
    ["api", "--help"],
    ["flower", "--help"],
    ["db", "upgrade", "--help"],
    ["tokens", "create", "--help"],
    ["health", "--help"],
]


@pytest.mark.slow  # builds a wheel and installs it with its dependencies: about a minute
@pytest.mark.services
def test_the_installed_wheel_runs_every_service_command_as_a_non_root_user(
    installed: Path,
) -> None:
    for argv in SERVICES:
        result = run_as_the_image(installed, *argv)
        assert result.returncode == 0, f"treadle {' '.join(argv)}:\n{result.stderr}"
        assert "Usage: treadle" in result.stdout
    for service in ("scheduler", "worker", "beat"):
        result = run_as_the_image(installed, "health", service)
        assert result.returncode == 1, result
        assert result.stderr.startswith(f"{service} is not running here: no heartbeat at ")
    with throwaway_postgres_database("treadle_image") as url:
        upgraded = run_as_the_image(installed, "db", "upgrade", TREADLE_DATABASE_URL=url)
        assert upgraded.returncode == 0, upgraded.stderr
        assert upgraded.stdout.strip().endswith(
            f"upgraded from revision <empty> to {head_revision()}"
        )
        again = run_as_the_image(installed, "db", "upgrade", TREADLE_DATABASE_URL=url)
        assert "(already up to date)" in again.stdout
