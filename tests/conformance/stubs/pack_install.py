"""Stand-ins for the ``core.*`` pack-installation actions ``install_packs.yaml`` calls.

They cannot live in a second ``core`` pack (a pack ref is loaded once), so the conformance
tests add them to the catalog one by one. ``get_pack_dependencies`` always reports one
missing dependency, which makes the workflow install it by calling itself again: the
recursion only stops at the nesting depth limit.
"""

from __future__ import annotations

from typing import Any


def download_packs(
    packs: list[str],
    destination_dir: str,
    registry_url: str | None = None,
    ref_spec: str | None = None,
    api_url: str | None = None,
    timeout: int = 300,
    verify_ssl: bool = True,
) -> dict[str, Any]:
    downloaded = [
        {"source": pack, "pack_ref": pack.split("@")[0], "pack_path": f"{destination_dir}/{pack}"}
        for pack in packs
    ]
    return {"downloaded_packs": downloaded, "failed_packs": [], "success_count": len(downloaded)}


def get_pack_dependencies(
    pack_paths: list[str], api_url: str | None = None, skip_validation: bool = False
) -> dict[str, Any]:
    missing = [{"pack_ref": f"dep_of_{path.rsplit('/', 1)[-1]}"} for path in pack_paths[:1]]
    return {"missing_dependencies": missing, "installed": []}


def build_pack_envs(
    pack_paths: list[str],
    packs_base_dir: str,
    python_version: str = "3.11",
    nodejs_version: str = "20",
    skip_python: bool = False,
    skip_nodejs: bool = False,
    force_rebuild: bool = False,
    timeout: int = 600,
) -> dict[str, Any]:
    return {"built": pack_paths, "python_version": python_version}


def run_pack_tests(
    pack_paths: list[str], timeout: int = 300, fail_on_error: bool = False
) -> dict[str, Any]:
    return {"passed": pack_paths, "failed": []}


def register_packs(
    pack_paths: list[str],
    packs_base_dir: str,
    skip_validation: bool = False,
    skip_tests: bool = False,
    force: bool = False,
    api_url: str | None = None,
) -> dict[str, Any]:
    registered = [
        {"pack_ref": path.rsplit("/", 1)[-1], "storage_path": path} for path in pack_paths
    ]
    return {"registered_packs": registered}
