"""Which incarnation of each broker the schedulers last saw.

A Redis broker restarted without persistence comes back empty, with a new ``run_id``. The
reconciler compares the ``run_id`` it reads with the one stored here, so a restart is
noticed even when it happened while no scheduler ran (a scheduler's memory would take the
new ``run_id`` for the first it ever saw).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from treadle.scheduler.store.base import Repository
from treadle.scheduler.store.models import broker_incarnations


class BrokerRepository(Repository):
    """Reading and noting the last seen incarnation of a broker, keyed by its address."""

    def noted_incarnation(self, broker: str) -> str | None:
        """The incarnation last noted for ``broker``; None if none was."""
        row = self._conn.execute(
            select(broker_incarnations.c.incarnation).where(broker_incarnations.c.broker == broker)
        ).first()
        return None if row is None else str(row[0])

    def note_incarnation(self, broker: str, incarnation: str, at: datetime) -> None:
        self._upsert(
            broker_incarnations,
            [{"broker": broker, "incarnation": incarnation, "noted_at": at}],
            ("broker",),
        )
