"""Golden record files for the commands: the key, writing a record and its ``.sig``,
reading one back and its signature.

``treadle runs golden`` writes, ``treadle golden verify|compare`` and ``treadle replay``
read. Every refusal is a message naming the file or ``TREADLE_GOLDEN_KEY`` and an exit
code (``docs/cli.md``): 2 when nothing could be checked (no key, an unreadable file, a
file that is not a golden record).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from treadle.cli.support import fail, load_settings
from treadle.common.errors import ConfigurationError

if TYPE_CHECKING:
    from treadle.scheduler.service.golden import GoldenKeys, GoldenRecord

NO_KEY = "TREADLE_GOLDEN_KEY is not set"


def golden_keys(*, required_for: str) -> GoldenKeys:
    """The keys of ``TREADLE_GOLDEN_KEY``; exit 2 saying ``required_for`` when unset."""
    from treadle.scheduler.service.golden import GoldenKeys

    secret = load_settings().golden_key
    if secret is None:
        fail(f"{NO_KEY}: {required_for}")
    try:
        return GoldenKeys.parse(secret.get_secret_value())
    except ConfigurationError as exc:
        fail(str(exc))


def signature_path(record: Path) -> Path:
    from treadle.scheduler.service.golden import SIG_SUFFIX

    return record.with_name(record.name + SIG_SUFFIX)


def write_record(path: Path, lines: Sequence[Mapping[str, Any]], keys: GoldenKeys | None) -> str:
    """Write the record (and its ``.sig`` when ``keys``); what was written, for the user.

    Without keys a ``.sig`` left by an earlier record at ``path`` is removed: it signs
    other bytes, and would only make the new record look tampered.
    """
    from treadle.scheduler.service.golden import golden_bytes

    data = golden_bytes(lines)
    sig = signature_path(path)
    try:
        path.write_bytes(data)
        if keys is not None:
            sig.write_text(keys.sign(data), encoding="ascii")
        elif sig.exists():
            sig.unlink()
    except OSError as exc:
        fail(f"cannot write the golden record {path}: {exc.strerror or exc}")
    if keys is None:
        return f"wrote {path} ({len(lines)} lines), unsigned"
    return f"wrote {path} ({len(lines)} lines) and {sig} (key {keys.signing_key_id})"


def read_bytes(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        fail(f"cannot read the golden record {path}: {exc.strerror or exc}")


def parse_record(path: Path, data: bytes) -> GoldenRecord:
    """The record in ``data`` (read from ``path``); exit 2 naming the line and field."""
    from treadle.scheduler.service.golden import GoldenFormatError, read_golden

    try:
        return read_golden(data, str(path))
    except GoldenFormatError as exc:
        fail(str(exc))


def read_signature(path: Path) -> str | None:
    """The text of ``path``'s signature file (``path.sig``); None when there is none, exit
    2 when it cannot be read."""
    sig = signature_path(path)
    try:
        return sig.read_text(encoding="ascii")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read the signature {sig}: {exc}")
