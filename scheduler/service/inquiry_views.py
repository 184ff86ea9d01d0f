"""Inquiries as people and programs see them: every field, with their runs' secrets masked.

An inquiry's prompt, schema or recorded answer may have been rendered from a secret
parameter or a secret keystore entry of its run. The HTTP API shows inquiries through
:func:`shown_inquiries`, which masks exactly the values the run document masks
(:func:`~treadle.scheduler.service.run_document.run_secrets`), so no view of a run leaks
what another hides.

Shape (``docs/api.md``)::

    {id, run, task, purpose, status, prompt, schema, assigned_to, deadline, response,
     responder, created_at, answered_at}

``task`` is null for a run-level inquiry (``purpose`` ``budget``); ``purpose`` says why it
was opened (``task``, ``escalation``, ``budget``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from treadle.common.redaction import redact
from treadle.scheduler.core.namespaces import iso
from treadle.scheduler.service.run_document import run_secrets
from treadle.scheduler.store import InquiryEntry, UnitOfWork

__all__ = ["inquiry_document", "shown_inquiries"]


def inquiry_document(entry: InquiryEntry) -> dict[str, Any]:
    """Every field of ``entry`` as JSON, nothing masked (see :func:`shown_inquiries`)."""
    return {
        "id": entry.id,
        "run": entry.run_id,
        "task": entry.task,
        "purpose": entry.purpose.value,
        "status": entry.status.value,
        "prompt": entry.prompt,
        "schema": entry.schema,
        "assigned_to": entry.assigned_to,
        "deadline": iso(entry.deadline),
        "response": entry.response,
        "responder": entry.responder,
        "created_at": iso(entry.created_at),
        "answered_at": iso(entry.answered_at),
    }


def shown_inquiries(uow: UnitOfWork, entries: Sequence[InquiryEntry]) -> list[dict[str, Any]]:
    """The entries as JSON, each with the secret values of its run masked (``***``).

    Each run is read once, however many of its inquiries are shown.
    """
    secrets: dict[str, tuple[str, ...]] = {}
    shown: list[dict[str, Any]] = []
    for entry in entries:
        if entry.run_id not in secrets:
            state = uow.load_run_overview(entry.run_id, failures=0).state
            secrets[entry.run_id] = run_secrets(state)
        masked: dict[str, Any] = redact(inquiry_document(entry), secrets[entry.run_id])
        shown.append(masked)
    return shown
