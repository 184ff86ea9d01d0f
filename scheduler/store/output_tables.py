"""What actions printed, per attempt, declared on the one schema (table ``attempt_outputs``).

Kept apart from ``models.py`` to keep each module small; the store package imports it
through ``attempt_details_repo.py``. What the rows mean: ``attempt_details_repo.py``,
migration 0022 and docs/storage.md.
"""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, String, Table, Text

from treadle.scheduler.store.coltypes import UTCDateTime
from treadle.scheduler.store.models import metadata

#: One row per attempt whose action wrote to stdout or stderr (none for a silent one): the
#: last ``TREADLE_CAPTURE_OUTPUT_BYTES`` of each stream as its worker reported them,
#: secrets blanked out, and whether earlier output was dropped. Per run: a purged run
#: takes its rows along (``retention_repo.PER_RUN_TABLES``).
attempt_outputs = Table(
    "attempt_outputs",
    metadata,
    Column("attempt_id", String, primary_key=True),
    Column("run_id", String, ForeignKey("runs.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("stdout", Text, nullable=False),
    Column("stderr", Text, nullable=False),
    Column("stdout_truncated", Boolean, nullable=False),
    Column("stderr_truncated", Boolean, nullable=False),
    Column("recorded_at", UTCDateTime, nullable=False),
)
