"""Answering an inquiry through the database: check, record, and apply ``InquiryAnswered``.

This is what ``treadle inquiry respond --distributed`` and :meth:`treadle.Client.respond`
do. Nothing is executed here: the answer and the run's next decision are written in one
transaction (with ``notify_outbox`` the schedulers wake and dispatch what follows). An
answer that does not satisfy the inquiry's schema is refused with every problem and
changes nothing; so is an answer to an inquiry that is no longer pending, or whose
deadline has passed (a scheduler closes it as timed out when it fires the deadline).
"""

from __future__ import annotations

from typing import Any

import jsonschema

from treadle.common.errors import ConflictError, ParameterError
from treadle.common.statuses import InquiryStatus
from treadle.scheduler.core.events import InquiryAnswered
from treadle.scheduler.core.namespaces import iso
from treadle.scheduler.service.runs import RunService
from treadle.scheduler.store import InquiryEntry, UnitOfWork


def schema_error(schema: Any) -> str | None:
    """Why ``schema`` is not a JSON Schema (2020-12) an answer can be checked against, or
    None when it is one (or there is none)."""
    if not schema:
        return None
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        where = "".join(f"[{part!r}]" for part in exc.absolute_path)
        return f"schema{where}: {exc.message}"
    return None


def unanswerable(inquiry: InquiryEntry) -> ConflictError | None:
    """The error to refuse every answer with when the inquiry's own schema is broken.

    Its prompt came from a workflow; no answer can be checked against a schema that is not
    one, so none is accepted (rather than failing halfway through checking it).
    """
    problem = schema_error(inquiry.schema)
    if problem is None:
        return None
    return ConflictError(
        f"inquiry {inquiry.id} cannot be answered: its schema is not a valid JSON Schema "
        f"({problem}); fix the workflow, and cancel run {inquiry.run_id}"
    )


def schema_problems(schema: Any, response: Any) -> list[str]:
    """Each way ``response`` breaks ``schema`` (JSON Schema 2020-12), by location.

    ``schema`` must be a valid schema (see :func:`schema_error`).
    """
    if not schema:
        return []
    errors = sorted(
        jsonschema.Draft202012Validator(schema).iter_errors(response),
        key=lambda e: [str(part) for part in e.absolute_path],
    )
    return [
        "response" + "".join(f"[{part!r}]" for part in error.absolute_path) + f": {error.message}"
        for error in errors
    ]


def answer_inquiry(
    runs: RunService, inquiry_id: str, response: Any, responder: str | None = None
) -> InquiryEntry:
    """Record the answer and move the run on, in one transaction; returns the inquiry as
    answered. Raises NotFound (unknown id), ParameterError (the answer does not fit the
    schema), ConflictError (not pending any more, past its deadline, or a schema that is
    not a valid JSON Schema)."""
    with runs.store.unit_of_work() as uow:
        return answer_inquiry_in(uow, runs, inquiry_id, response, responder)


def answer_inquiry_in(
    uow: UnitOfWork,
    runs: RunService,
    inquiry_id: str,
    response: Any,
    responder: str | None = None,
) -> InquiryEntry:
    """:func:`answer_inquiry` in the caller's transaction (the HTTP API's, which records
    the answer in the audit log with it)."""
    now = runs.clock()
    inquiry = uow.get_inquiry(inquiry_id)
    uow.lock_runs([inquiry.run_id])  # answers and timers of one run take turns
    inquiry = uow.get_inquiry(inquiry_id)
    if inquiry.status is not InquiryStatus.PENDING:
        raise ConflictError(f"inquiry {inquiry_id} is {inquiry.status.value}, not pending")
    if inquiry.deadline is not None and inquiry.deadline <= now:
        raise ConflictError(
            f"inquiry {inquiry_id} expired at {iso(inquiry.deadline)}; it is closed as timed out"
        )
    broken = unanswerable(inquiry)
    if broken is not None:
        raise broken
    problems = schema_problems(inquiry.schema, response)
    if problems:
        raise ParameterError(problems, subject=f"response to {inquiry_id}")
    uow.answer_inquiry(inquiry_id, response, responder, now)
    event = InquiryAnswered(inquiry_id=inquiry_id, response=response, responder=responder)
    runs.apply_in(uow, [(inquiry.run_id, event)])
    return uow.get_inquiry(inquiry_id)
