"""The database side of the commands' one seam (:mod:`treadle.cli.clients`).

:class:`treadle.Client` has every call the commands make but those that return what they
print as it is: the run document, a page of items or of a task's attempts, inquiries as
shown (their run's secret values masked), and the keystore's entries (a secret one's
value never shown).
:class:`treadle.ApiClient` has those (the API sends them as they are), and
:class:`DatabaseClient` adds them to the database client, each read in one snapshot as
every client read is, in the shapes the API sends; its keystore changes are recorded in
the audit log as the API records them (``kv.set``, ``kv.delete``), by ``cli:<login>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from treadle.client import Client

if TYPE_CHECKING:
    from treadle.common.statuses import InquiryStatus

__all__ = ["DatabaseClient"]


class DatabaseClient(Client):
    """:class:`treadle.Client` with the run document reads the commands print as they are
    (the API sends them the same way: :meth:`treadle.ApiClient.get_document`)."""

    def get_document(self, run_id: str, *, items: bool = False) -> dict[str, Any]:
        from treadle.scheduler.service.run_document import stored_run_document

        with self._session(), self.store.snapshot() as uow:
            return stored_run_document(uow, run_id, items=items)

    def items_document(
        self, run_id: str, task: str, *, cursor: str | None = None, limit: int = 100
    ) -> dict[str, Any]:
        from treadle.scheduler.service.run_document import item_page

        with self._session(), self.store.snapshot() as uow:
            return item_page(uow, run_id, task, cursor=cursor, limit=limit)

    def attempts_document(
        self, run_id: str, task: str, *, cursor: str | None = None, limit: int = 20
    ) -> dict[str, Any]:
        from treadle.scheduler.service.attempt_views import task_attempts

        with self._session(), self.store.snapshot() as uow:
            return task_attempts(uow, run_id, task, cursor=cursor, limit=limit)

    def respond_document(self, inquiry_id: str, response: Any) -> dict[str, Any]:
        """:meth:`respond`, returning the inquiry as :meth:`inquiry` shows it."""
        self.respond(inquiry_id, response)
        return self.inquiry(inquiry_id)

    def inquiry(self, inquiry_id: str) -> dict[str, Any]:
        from treadle.scheduler.service.inquiry_views import shown_inquiries

        with self._session(), self.store.snapshot() as uow:
            [shown] = shown_inquiries(uow, [uow.get_inquiry(inquiry_id)])
        return shown

    def inquiries(
        self, *, status: InquiryStatus | str | None = None, run: str | None = None
    ) -> list[dict[str, Any]]:
        from treadle.common.statuses import InquiryStatus
        from treadle.scheduler.service.inquiry_views import shown_inquiries

        wanted = InquiryStatus(status) if status is not None else None
        with self._session(), self.store.snapshot() as uow:
            return shown_inquiries(uow, uow.list_inquiries(status=wanted, run_id=run))

    # -- the keystore, as the API shows it (a secret entry's value is null) ------------------

    def kv_list(self) -> list[dict[str, Any]]:
        from treadle.scheduler.service.keystore import keystore_entries

        with self._session(), self.store.snapshot() as uow:
            return keystore_entries(uow)

    def kv_get(self, key: str) -> dict[str, Any]:
        from treadle.scheduler.service.keystore import keystore_entry

        with self._session(), self.store.snapshot() as uow:
            return keystore_entry(uow, key)

    def kv_set(self, key: str, value: Any, *, secret: bool = False) -> dict[str, Any]:
        from datetime import UTC, datetime

        from treadle.clientlib.audit import Change
        from treadle.scheduler.service.keystore import set_entry

        limit = self._settings.limits.max_payload_bytes
        change = Change("kv.set", key, {"secret": secret})  # never the value
        with self._session(), self._auditor.audited(change) as uow:
            return set_entry(uow, key, value, secret=secret, at=datetime.now(UTC), max_bytes=limit)

    def kv_delete(self, key: str) -> None:
        from treadle.clientlib.audit import Change
        from treadle.scheduler.service.keystore import delete_entry

        with self._session(), self._auditor.audited(Change("kv.delete", key)) as uow:
            delete_entry(uow, key)
