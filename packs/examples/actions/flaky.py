"""examples.flaky: fails a set number of times per key, then succeeds (retry demos).

Each call appends one byte to ``<counter_dir>/<key>.count``; with ``O_APPEND`` the offset
after our own write is our call number, so concurrent calls still count correctly.
"""

from __future__ import annotations

import os
import re
import tempfile


class FlakyError(Exception):
    """Raised on the calls that fail on purpose."""


def flaky(key: str, failures: int = 2, counter_dir: str | None = None) -> dict[str, int]:
    folder = counter_dir or os.path.join(tempfile.gettempdir(), "treadle-flaky")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, re.sub(r"[^A-Za-z0-9_.-]", "_", key) + ".count")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        os.write(fd, b".")
        calls = os.lseek(fd, 0, os.SEEK_CUR)
    finally:
        os.close(fd)
    if calls <= failures:
        raise FlakyError(f"call {calls} fails on purpose ({failures} failures planned)")
    return {"calls": calls}
