"""A run's trace id, the same in every process without being stored.

W3C Trace Context (and OpenTelemetry) trace ids are 16 bytes, written as 32 lowercase
hex digits, never all zeros. A run's is the first 16 bytes of SHA-256 of its *root* run
id: a child run's id starts with its root's (``<root>.<execution>.<unit>.<attempt>``,
see ``scheduler/core/ids.py`` ``child_run_id``), so a whole run tree shares one trace,
and the scheduler, the workers, the API and the CLI compute the same id from the run id
alone. Log lines carry it as ``trace_id``; the OpenTelemetry traces use the same id.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

#: What separates a child run's id from its parent's (``scheduler/core/ids.py``).
CHILD_SEPARATOR = "."


def root_run_id(run_id: str) -> str:
    """The id of the run at the top of ``run_id``'s tree (itself for a top-level run)."""
    return run_id.split(CHILD_SEPARATOR, 1)[0]


@lru_cache(maxsize=4096)
def trace_id_of(run_id: str) -> str:
    """The 32-hex trace id of the tree ``run_id`` belongs to."""
    digest = hashlib.sha256(root_run_id(run_id).encode()).hexdigest()[:32]
    return digest if digest.strip("0") else "0" * 31 + "1"  # all zeros is invalid in W3C
