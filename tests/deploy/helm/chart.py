"""Renders helm/treadle as ``helm template`` would, for the chart's tests (no helm binary here).

The renderer is the Go program in ``render/``: Go's text/template with sprig and Helm's own
functions and objects. It is built once per source version into the temp folder (Debian's
``golang-go``, ``golang-github-masterminds-sprig-dev`` and ``golang-gopkg-yaml.v2-dev``, in
GOPATH mode); without them the tests skip and say how to install them (.ci/run does).
Like Helm, :func:`render` checks the merged values against ``values.schema.json`` before
anything else, and raises :class:`HelmError` with Helm's message when rendering fails.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "helm" / "treadle"
VALUES = Path(__file__).resolve().parent / "values"
RENDERER_SOURCE = Path(__file__).resolve().parent / "render"
GOPATH = Path("/usr/share/gocode")
GO_PACKAGES = "golang-go golang-github-masterminds-sprig-dev golang-gopkg-yaml.v2-dev"


class HelmError(Exception):
    """Rendering failed; the message is what Helm prints."""


@dataclass(frozen=True)
class Manifest:
    """One rendered document and the template it came from."""

    source: str
    doc: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.doc["kind"])

    @property
    def name(self) -> str:
        return str(self.doc["metadata"]["name"])


@dataclass(frozen=True)
class Rendered:
    """A rendered release: its manifests and the values they were rendered from."""

    manifests: tuple[Manifest, ...]
    values: dict[str, Any]

    def of_kind(self, kind: str) -> list[Manifest]:
        return [m for m in self.manifests if m.kind == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        found = [m.doc for m in self.of_kind(kind) if m.name == name]
        assert found, f"no {kind} {name} in {[(m.kind, m.name) for m in self.manifests]}"
        return found[0]

    def pod_specs(self) -> Iterator[tuple[Manifest, dict[str, Any]]]:
        """Every pod template's spec, with the manifest holding it."""
        for manifest in self.manifests:
            if manifest.kind in {"Deployment", "Job"}:
                yield manifest, manifest.doc["spec"]["template"]["spec"]

    def containers(self) -> Iterator[tuple[Manifest, dict[str, Any]]]:
        for manifest, spec in self.pod_specs():
            for container in spec.get("initContainers", []) + spec["containers"]:
                yield manifest, container


def renderer() -> Path:
    """The built renderer (built now if this version of its source was never built)."""
    go = shutil.which("go")
    if go is None or not (GOPATH / "src/github.com/Masterminds/sprig").is_dir():
        pytest.skip(
            "Go and sprig are not installed: apt-get install -y "
            f"{GO_PACKAGES} (.ci/run does it on CI)"
        )
    digest = hashlib.sha256()
    for source in sorted(RENDERER_SOURCE.glob("*.go")):
        digest.update(source.name.encode() + b"\0" + source.read_bytes())
    home = Path(tempfile.gettempdir()) / "treadle-helm-render"
    binary = home / digest.hexdigest()[:16] / "render"
    if binary.exists():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    with (home / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest-xdist's workers build it once between them
        if not binary.exists():
            partial = binary.with_suffix(".partial")
            env = {
                **os.environ,
                "GO111MODULE": "off",
                "GOPATH": str(GOPATH),
                "GOCACHE": str(home / "gocache"),
                "GOFLAGS": "",
                "GOENV": "off",  # no `go env -w` settings of the machine
            }
            built = subprocess.run(
                [go, "build", "-o", str(partial), "."],
                cwd=RENDERER_SOURCE,
                env=env,
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
            assert built.returncode == 0, f"building the renderer failed:\n{built.stderr}"
            partial.replace(binary)
    return binary


def render(
    *value_files: str | Path,
    sets: Sequence[str] = (),
    chart: Path = CHART,
    kube_version: str | None = None,
    upgrade: bool = False,
    release: str = "release-name",
) -> Rendered:
    """``helm template RELEASE CHART -f ... --set ...``; a bare name is a file of ``values/``."""
    files = [f if isinstance(f, Path) else VALUES / f"{f}.yaml" for f in value_files]
    with tempfile.TemporaryDirectory(prefix="treadle-helm-") as scratch:
        values_out = Path(scratch) / "values.json"
        argv = [str(renderer()), str(chart), "--name", release, "--values-out", str(values_out)]
        for file in files:
            argv += ["-f", str(file)]
        for item in sets:
            argv += ["--set", item]
        if kube_version:
            argv += ["--kube-version", kube_version]
        if upgrade:
            argv.append("--upgrade")
        result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
        values = json.loads(values_out.read_text()) if values_out.exists() else None
    if values is not None:
        check_schema(chart, values)
    if result.returncode != 0:
        raise HelmError(result.stderr.strip())
    assert values is not None
    return Rendered(manifests=tuple(parse(result.stdout)), values=values)


def check_schema(chart: Path, values: dict[str, Any]) -> None:
    """Helm's check of the merged values against the chart's values.schema.json."""
    schema_file = chart / "values.schema.json"
    if not schema_file.exists():
        return
    validator = jsonschema.Draft7Validator(json.loads(schema_file.read_text()))
    problems = sorted(validator.iter_errors(values), key=lambda e: list(e.absolute_path))
    if problems:
        lines = "\n".join(
            f"- {'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}"
            for e in problems
        )
        raise HelmError(
            "Error: values don't meet the specifications of the schema(s) in the following "
            f"chart(s):\n{chart.name}:\n{lines}"
        )


def parse(output: str) -> Iterator[Manifest]:
    """The documents of ``helm template`` output, each with its ``# Source:``."""
    for chunk in output.split("\n---\n"):
        text = chunk.removeprefix("---\n")
        if not text.strip():
            continue
        first, _, body = text.partition("\n")
        assert first.startswith("# Source: "), f"a document without its source: {text[:200]}"
        doc = yaml.safe_load(body)
        if doc:
            yield Manifest(source=first.removeprefix("# Source: "), doc=doc)
