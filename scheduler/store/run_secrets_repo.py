"""The encrypted values of runs' ``secret: true`` parameters (table ``run_secrets``).

A run's context holds a reference for each secret parameter; the value, encrypted when
the run started, is here, one row per parameter. Its ciphertext is read into a dispatch
that needs it and never decrypted by the scheduler. The rows go when the run is purged
(``PER_RUN_TABLES``). The run's reference tag (see :mod:`treadle.common.secret_refs`) is
in its context, read here too so the relay can tell a run's own references from imitations.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from sqlalchemy import select, tuple_, update

from treadle.scheduler.store.base import Repository, chunks
from treadle.scheduler.store.codec import encode_value
from treadle.scheduler.store.models import run_secrets, runs


class RunSecretsRepository(Repository):
    """Writing and reading ``run_secrets`` rows (ciphertexts only)."""

    def encrypt_secret(self, value: Any) -> str:
        """``value`` encrypted with the store's key (ConfigurationError naming
        ``TREADLE_SECRET_KEY`` where there is none)."""
        return self._keys.keyring().encrypt(encode_value(value))

    def store_run_secrets(self, run_id: str, ciphertexts: Mapping[str, str]) -> None:
        """Keep the ciphertexts of a run's secret parameters (name -> ciphertext)."""
        self._upsert(
            run_secrets,
            [{"run_id": run_id, "name": n, "ciphertext": c} for n, c in ciphertexts.items()],
            ("run_id", "name"),
        )

    def run_secret_ciphertexts(
        self, wanted: Collection[tuple[str, str]]
    ) -> dict[tuple[str, str], str]:
        """The ciphertexts of the ``(run_id, name)`` pairs that exist."""
        found: dict[tuple[str, str], str] = {}
        for batch in chunks(sorted(set(wanted))):
            rows = self._conn.execute(
                select(run_secrets.c.run_id, run_secrets.c.name, run_secrets.c.ciphertext).where(
                    tuple_(run_secrets.c.run_id, run_secrets.c.name).in_(list(batch))
                )
            )
            found.update({(run_id, name): text for run_id, name, text in rows})
        return found

    def run_secret_tags(self, run_ids: Collection[str]) -> dict[str, tuple[str, str]]:
        """``{run id: (reference tag, workspace)}`` for each of ``run_ids`` with a tag (a
        run reads the keystore secrets of its own workspace only)."""
        tags: dict[str, tuple[str, str]] = {}
        for batch in chunks(sorted(set(run_ids))):
            rows = self._conn.execute(
                select(runs.c.id, runs.c.context, runs.c.workspace).where(runs.c.id.in_(batch))
            )
            for run_id, context, workspace in rows:
                tag = (context or {}).get("secret_tag") if isinstance(context, dict) else None
                if isinstance(tag, str) and tag:
                    tags[run_id] = (tag, str(workspace))
        return tags

    def run_secrets_page(
        self, after: tuple[str, str] | None, limit: int
    ) -> list[tuple[str, str, str]]:
        """Up to ``limit`` rows ``(run_id, name, ciphertext)`` past ``after`` in key order
        (for rotation, a page per transaction)."""
        stmt = select(run_secrets.c.run_id, run_secrets.c.name, run_secrets.c.ciphertext)
        if after is not None:
            stmt = stmt.where(tuple_(run_secrets.c.run_id, run_secrets.c.name) > after)
        stmt = stmt.order_by(run_secrets.c.run_id, run_secrets.c.name).limit(limit)
        return [(r, n, c) for r, n, c in self._conn.execute(stmt)]

    def replace_run_secret(self, run_id: str, name: str, ciphertext: str) -> None:
        self._conn.execute(
            update(run_secrets)
            .where(run_secrets.c.run_id == run_id, run_secrets.c.name == name)
            .values(ciphertext=ciphertext)
        )
