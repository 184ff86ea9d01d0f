"""Which key a store encrypts secrets with, found the first time a secret is stored.

Every process that stores a secret (the CLI, the API, a scheduler starting runs) reaches
the keystore through a :class:`~treadle.scheduler.store.Store`, so the store finds the key,
in this order:

1. the key given when the store was opened (the embedded runner passes its settings');
2. ``TREADLE_SECRET_KEY`` in the environment;
3. on a SQLite file, the key file ``.treadle/secret.key`` beside the database (the
   database's own folder when that is a ``.treadle`` folder, as for the default
   ``.treadle/treadle.db``), created on first use with mode 0600: embedded mode needs no
   setup; on an in-memory SQLite database a key for this process only;
4. otherwise (PostgreSQL) a :class:`~treadle.common.secret_box.SecretKeyMissing` naming
   ``TREADLE_SECRET_KEY``: a shared database needs a key every process agrees on.

Nothing is looked up until a secret is stored or its key is asked for, so runs without
secrets need no key.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import Final

from sqlalchemy.engine import URL

from treadle.common.secret_box import SECRET_KEY_VARIABLE, Keyring, SecretKeyMissing, generate_key
from treadle.scheduler.store.engine import is_memory_sqlite

KEY_FILE_NAME: Final = "secret.key"
_STATE_FOLDER: Final = ".treadle"


def key_file_for(database: Path) -> Path:
    """Where the generated key of the SQLite database file ``database`` is kept."""
    folder = database.expanduser().absolute().parent
    if folder.name != _STATE_FOLDER:
        folder = folder / _STATE_FOLDER
    return folder / KEY_FILE_NAME


class StoreKeys:
    """The store's keys (see the module docstring); resolved once, then kept."""

    def __init__(self, url: URL, configured: str | None = None) -> None:
        self._url = url
        self._configured = configured.strip() if configured else None
        self._keyring: Keyring | None = None
        self._lock = threading.Lock()

    @property
    def key_file(self) -> Path | None:
        """The generated key's file, for a SQLite file without a configured key."""
        if self._url.get_backend_name() != "sqlite" or is_memory_sqlite(self._url):
            return None
        return key_file_for(Path(self._url.database or ""))

    def keyring(self) -> Keyring:
        """The keys; raises SecretKeyMissing where none is configured nor generated."""
        with self._lock:
            if self._keyring is None:
                self._keyring = self._find()
            return self._keyring

    def _find(self) -> Keyring:
        if self._configured:
            return Keyring.parse(self._configured)
        from_environment = os.environ.get(SECRET_KEY_VARIABLE, "").strip()
        if from_environment:
            return Keyring.parse(from_environment)
        if self._url.get_backend_name() == "sqlite":
            key_file = self.key_file
            if key_file is None:
                return Keyring([generate_key()], origin="a key for this in-memory database")
            return Keyring.parse(_read_or_create(key_file), origin=str(key_file))
        raise SecretKeyMissing(
            f"{SECRET_KEY_VARIABLE} is not set: secrets cannot be stored or sent to workers "
            "on a shared database without it. Generate one with `treadle secrets "
            "generate-key` and give the same value to every Treadle process"
        )


def _read_or_create(path: Path) -> str:
    """The key in ``path``, written first (mode 0600) if there is none yet.

    The key is written to a file of this process and linked into place, which fails if
    another process got there first: then its key is used, never half a file.
    """
    try:
        return path.read_text(encoding="ascii").strip()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f"{path.name}.{os.getpid()}.{threading.get_ident()}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as out:
            out.write(generate_key() + "\n")
        with contextlib.suppress(FileExistsError):  # another process made it first: theirs
            os.link(draft, path)
    finally:
        draft.unlink(missing_ok=True)
    return path.read_text(encoding="ascii").strip()
