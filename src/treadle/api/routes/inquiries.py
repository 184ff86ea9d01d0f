"""The inquiries routes: list the questions runs put to people, read one, answer it.

Served under ``/api/v1/inquiries``. Listing and reading need any role and happen in one
snapshot; an inquiry's prompt, schema and answer are shown with its run's secret values
masked (:mod:`treadle.scheduler.service.inquiry_views`). Answering needs the operator role
and does what :meth:`treadle.Client.respond` does, in one transaction with its audit entry
(``inquiry.respond``): the answer is checked against the inquiry's JSON Schema (a misfit is
422 naming each problem, and changes nothing), recorded, and the run moves on in the same
transaction; the schedulers carry out what follows. Inquiries are run-bound: which ones a
principal sees is :func:`~treadle.api.workspaces.run_scope`'s call.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, FastAPI, Path, Query
from fastapi.responses import JSONResponse

from treadle.api.audit import audited
from treadle.api.context import Context
from treadle.api.errors import CHANGE_RESPONSES, ERROR_RESPONSES
from treadle.api.models.inquiries import Inquiry, InquiryList
from treadle.api.security import Operator, Viewer
from treadle.api.workspaces import run_scope
from treadle.common.statuses import InquiryStatus
from treadle.scheduler.service.inquiries import answer_inquiry_in
from treadle.scheduler.service.inquiry_views import shown_inquiries
from treadle.scheduler.store.inquiry_repo import MAX_INQUIRY_PAGE, InquiryFilter

__all__ = ["PREFIX", "include", "router"]

#: Where the routes are served.
PREFIX = "/api/v1/inquiries"

router = APIRouter(responses=ERROR_RESPONSES)

InquiryId = Annotated[str, Path(description="The inquiry's id.")]


@router.get(
    "",
    summary="List inquiries, oldest first",
    name="list_inquiries",
    response_model=InquiryList,
)
def list_inquiries(
    *,
    principal: Viewer,
    context: Context,
    status: Annotated[
        InquiryStatus | None,
        Query(description="Only inquiries in this status (`pending`: awaiting an answer)."),
    ] = None,
    run: Annotated[str | None, Query(description="Only the inquiries of this run.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_INQUIRY_PAGE, description="Inquiries per page.")] = 50,
    cursor: Annotated[
        str | None,
        Query(description="The `next_cursor` of the previous page; omit it for the first."),
    ] = None,
) -> JSONResponse:
    """A page of the inquiries matching every filter given, oldest first (keyset
    pagination: pass `next_cursor` back as `cursor`, with the same filters, for the next
    page; inquiries opened meanwhile never shift a page)."""
    scope = run_scope(principal)
    where = scope.inquiries(InquiryFilter(status=status, run_id=run))
    with context.reading() as uow:
        if run is not None:
            scope.check(uow, run)
        page = uow.list_inquiries_page(where, limit=limit, cursor=cursor)
        items = shown_inquiries(uow, page.inquiries)
    return JSONResponse({"items": items, "next_cursor": page.next_cursor})


@router.get("/{inquiry_id}", summary="One inquiry", name="get_inquiry", response_model=Inquiry)
def get_inquiry(inquiry_id: InquiryId, principal: Viewer, context: Context) -> JSONResponse:
    """The inquiry: what is asked, of whom, until when, the schema an answer must fit, and
    the answer once given (values of its run's secrets as `***`)."""
    with context.reading() as uow:
        entry = uow.get_inquiry(inquiry_id)
        run_scope(principal).check(uow, entry.run_id)
        [shown] = shown_inquiries(uow, [entry])
    return JSONResponse(shown)


@router.post(
    "/{inquiry_id}/respond",
    summary="Answer an inquiry",
    name="respond_to_inquiry",
    response_model=Inquiry,
    responses=CHANGE_RESPONSES,
)
def respond(
    inquiry_id: InquiryId,
    principal: Operator,
    context: Context,
    response: Annotated[
        Any, Body(description="The answer: any JSON value fitting the inquiry's schema.")
    ],
) -> JSONResponse:
    """Answer a pending inquiry; the run goes on from there (the schedulers carry it on).
    Needs the operator role. The body is the answer itself, checked against the inquiry's
    JSON Schema: an answer that does not fit is 422 (`invalid_parameters`, each problem
    naming the field) and changes nothing. 409 when the inquiry is no longer pending
    (answered, timed out, canceled) or past its deadline. Returns the inquiry, answered."""
    runs = context.run_service()
    with audited(context, principal, "inquiry.respond", inquiry_id) as uow:
        entry = uow.get_inquiry(inquiry_id)
        run_scope(principal).check(uow, entry.run_id)
        answer_inquiry_in(uow, runs, inquiry_id, response, principal.actor)
    with context.reading() as uow:
        [shown] = shown_inquiries(uow, [uow.get_inquiry(inquiry_id)])
    return JSONResponse(shown)


def include(app: FastAPI) -> None:
    """Serve the routes under :data:`PREFIX`."""
    app.include_router(
        router,
        prefix=PREFIX,
        tags=["inquiries"],
        generate_unique_id_function=lambda route: route.name,
    )
