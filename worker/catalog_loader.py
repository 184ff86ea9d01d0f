"""The packs a worker serves: the shipped packs, ``TREADLE_PACK_PATHS`` and ``--pack-path``.

A worker resolves every dispatched action in this catalog. It is loaded once per process,
on first use: a prefork pool child loads its own after the fork, so nothing a load leaves
behind (open files, imported action modules) is shared between processes. Problems in
the packs are logged, not raised: the broken file is skipped and the rest is served, the
same rule as ``treadle validate`` and ``treadle run``.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path

from treadle.common.catalog import Catalog
from treadle.common.errors import ConfigurationError
from treadle.common.loader import load_packs
from treadle.common.settings import Settings
from treadle.common.source import Severity
from treadle.common.spec import ActionSpec

logger = logging.getLogger("treadle.worker")


def shipped_packs_folder() -> Path:
    """``treadle/packs``, found next to this package (not by importing ``treadle``)."""
    return Path(__file__).parent.parent / "packs"


def pack_folders(settings: Settings, extra: Iterable[str | os.PathLike[str]] = ()) -> list[Path]:
    """The shipped packs, then ``settings.pack_paths``, then ``extra`` (later ones win)."""
    return [shipped_packs_folder(), *(Path(p) for p in settings.pack_paths), *map(Path, extra)]


def check_pack_folders(folders: Sequence[Path]) -> None:
    """Raise :class:`ConfigurationError` naming every pack path that is not a folder."""
    missing = [str(folder) for folder in folders if not folder.is_dir()]
    if missing:
        raise ConfigurationError(
            "pack path "
            + ", ".join(missing)
            + (" is" if len(missing) == 1 else " are")
            + " not a folder (check TREADLE_PACK_PATHS and --pack-path)"
        )


class PackCatalog:
    """The catalog of ``folders``, loaded on first use in each process (thread-safe).

    It satisfies :class:`treadle.worker.execute.ActionLookup`. Loading problems are
    logged as warnings by the first process that loads; a pool child forked after its
    parent loaded logs them only at debug level (the parent already reported them).
    """

    def __init__(self, folders: Sequence[Path]) -> None:
        self.folders = tuple(folders)
        self._lock = threading.Lock()
        self._loaded: tuple[int, Catalog] | None = None
        self._issues_reported = False
        os.register_at_fork(after_in_child=self._after_fork)

    def catalog(self) -> Catalog:
        """This process's catalog, loading it on the first call."""
        loaded = self._loaded
        if loaded is not None and loaded[0] == os.getpid():
            return loaded[1]
        with self._lock:
            loaded = self._loaded
            if loaded is None or loaded[0] != os.getpid():
                loaded = (os.getpid(), self._load())
                self._loaded = loaded
            return loaded[1]

    def action(self, ref: str) -> ActionSpec:
        return self.catalog().action(ref)

    def _load(self) -> Catalog:
        catalog = load_packs(self.folders)
        level = logging.DEBUG if self._issues_reported else logging.WARNING
        for issue in catalog.issues:
            suffix = " (that file is skipped)" if issue.severity is Severity.ERROR else ""
            logger.log(level, "pack problem: %s%s", issue, suffix)
        self._issues_reported = True
        logger.info(
            "serving %d actions from %d packs (%s) in process %d",
            len(catalog.actions),
            len(catalog.packs),
            ", ".join(sorted(catalog.packs)) or "none",
            os.getpid(),
        )
        return catalog

    def _after_fork(self) -> None:
        self._lock = threading.Lock()
