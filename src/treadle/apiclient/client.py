"""The :class:`ApiClient` class: :class:`treadle.Client`'s calls, over ``treadle api``.

Each call is one request (:class:`~treadle.apiclient.http.HttpSession`), its answer turned
into what :class:`treadle.Client` returns for the same call
(:mod:`treadle.apiclient.shapes`), its error answer into the exception the database client
raises. See :mod:`treadle.apiclient` and ``docs/api.md``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import httpx
from pydantic import SecretStr

from treadle.apiclient.golden import GoldenCalls
from treadle.apiclient.http import HttpSession, segment
from treadle.apiclient.shapes import event_outcome, run_page, versions_of
from treadle.clientlib.control_shortcuts import BudgetLike, budget_of
from treadle.clientlib.polling import MAX_POLL_INTERVAL, MIN_POLL_INTERVAL, Look, poll
from treadle.clientlib.version_info import VersionInfo
from treadle.clientlib.views import InquiryInfo, ItemPage, RunInfo
from treadle.common.errors import ConfigurationError, ConflictError, TreadleError, WaitTimeout
from treadle.common.settings import Settings, settings_from_environment
from treadle.common.statuses import InquiryStatus, RunStatus
from treadle.scheduler.service.control_rules import Control, ControlRefused
from treadle.scheduler.service.event_outcome import EventOutcome
from treadle.scheduler.store.entries import RunPage

__all__ = ["DEFAULT_TIMEOUT", "INQUIRY_PAGE", "ApiClient"]

log = logging.getLogger("treadle.client")

#: Seconds a request may take (connecting, then each read) before ServiceUnavailable.
DEFAULT_TIMEOUT = 10.0
#: Inquiries read per request when listing them all.
INQUIRY_PAGE = 500


class ApiClient(GoldenCalls):
    """:class:`treadle.Client` over the HTTP API; see the module docstring.

    ``base_url`` is where ``treadle api`` answers (``http://host:8080``; a trailing
    ``/api/v1`` is allowed) and ``token`` an API token; they default to ``settings``
    (``TREADLE_API_URL``, ``TREADLE_API_TOKEN``). ``timeout`` bounds each request.
    ``transport`` is for tests and special set-ups: an httpx transport, or an
    ``httpx.Client`` to send the requests with (FastAPI's ``TestClient``).
    """

    def __init__(
        self,
        base_url: str | None = None,
        token: str | SecretStr | None = None,
        *,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.BaseTransport | httpx.Client | None = None,
        settings: Settings | None = None,
    ) -> None:
        if base_url is None or token is None:
            settings = settings if settings is not None else settings_from_environment()
            base_url = base_url or settings.api_url
            token = token if token is not None else settings.api_token
        if not base_url:
            raise ConfigurationError(
                "no API URL: pass base_url, or set TREADLE_API_URL (e.g. http://host:8080)"
            )
        secret = token.get_secret_value() if isinstance(token, SecretStr) else token
        self._http = HttpSession(base_url, secret, timeout=timeout, transport=transport)

    def __repr__(self) -> str:  # never the token
        return f"<ApiClient {self._http.base_url}>"

    # -- context -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Where the API answers, for messages (what ``Client.database`` is for the database)."""
        return self._http.base_url

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # -- starting runs -----------------------------------------------------------------------

    def start(
        self,
        ref: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        version: int | None = None,
        priority: int | None = None,
        seed: int | None = None,
        budget: BudgetLike = None,
    ) -> str:
        """Start a run of the published workflow ``ref`` (its latest version, or ``version``).

        As :meth:`treadle.Client.start`: NotFound when nothing is published under ``ref``,
        ParameterError (naming every bad parameter) when the parameters do not fit; with an
        ``idempotency_key`` already used, that run's id (nothing is started).
        """
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else None
        body: dict[str, Any] = {"parameters": dict(parameters or {}), "version": version}
        if priority is not None:
            body["priority"] = priority
        if seed is not None:
            body["seed"] = seed
        limits = budget_of(budget)
        if limits is not None:
            body["budget"] = limits.as_json()
        answer = self._http.json(
            "POST", f"/workflows/{segment(ref)}/execute", body=body, headers=headers
        )
        run_id = str(answer["id"])
        log.info("run %s of %s started through %s", run_id, ref, self.base_url)
        return run_id

    # -- reading runs ------------------------------------------------------------------------

    def get(self, run_id: str, *, items: bool = False) -> RunInfo:
        """The run as it is now (NotFound for an unknown id); see :meth:`treadle.Client.get`."""
        return RunInfo.from_document(self.get_document(run_id, items=items))

    def get_document(self, run_id: str, *, items: bool = False) -> dict[str, Any]:
        """:meth:`get`, as the run document itself (what ``treadle runs show`` prints)."""
        params = {"items": "true"} if items else None
        document: dict[str, Any] = self._http.json("GET", f"/runs/{segment(run_id)}", params=params)
        return document

    def items(
        self, run_id: str, task: str, *, cursor: str | None = None, limit: int = 100
    ) -> ItemPage:
        """One page of the items of ``task`` (its latest execution), in item order.

        NotFound for an unknown run or a task that has not started; ParameterError for a
        bad cursor or a ``limit`` outside 1..1000.
        """
        return ItemPage.model_validate(
            self.items_document(run_id, task, cursor=cursor, limit=limit)
        )

    def items_document(
        self, run_id: str, task: str, *, cursor: str | None = None, limit: int = 100
    ) -> dict[str, Any]:
        """:meth:`items`, as the page the API sends (what ``treadle runs show --items`` prints)."""
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        path = f"/runs/{segment(run_id)}/tasks/{segment(task)}/items"
        page: dict[str, Any] = self._http.json("GET", path, params=params)
        return page

    def attempts_document(
        self, run_id: str, task: str, *, cursor: str | None = None, limit: int = 20
    ) -> dict[str, Any]:
        """A page of ``task``'s attempts with their input and captured output, as the API
        sends it (what ``treadle runs show --attempts`` prints)."""
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        path = f"/runs/{segment(run_id)}/tasks/{segment(task)}/attempts"
        page: dict[str, Any] = self._http.json("GET", path, params=params)
        return page

    def list_runs(
        self,
        *,
        status: RunStatus | str | None = None,
        workflow: str | None = None,
        parent: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        """A page of runs, newest first; pass its ``next_cursor`` back for the next page.

        As :meth:`treadle.Client.list_runs` (``created_after`` inclusive, ``created_before``
        exclusive; ParameterError for a bad cursor or a ``limit`` outside 1..1000).
        """
        params: dict[str, str | int] = {"limit": limit}
        if status is not None:
            params["status"] = RunStatus(status).value
        for name, value in (("workflow", workflow), ("parent", parent), ("cursor", cursor)):
            if value is not None:
                params[name] = value
        if created_after is not None:
            params["started_after"] = created_after.isoformat()
        if created_before is not None:
            params["started_before"] = created_before.isoformat()
        return run_page(self._http.json("GET", "/runs", params=params))

    def wait(
        self,
        run_id: str,
        timeout: float | None = None,
        *,
        poll_interval: float = 0.05,
        items: bool = False,
    ) -> RunInfo:
        """Poll ``GET /runs/{id}`` until the run ends and return it; WaitTimeout after
        ``timeout`` seconds. Polls back off from ``poll_interval`` to 0.5 s while the run
        does not change, as :meth:`treadle.Client.wait` does; a run waiting on an inquiry
        has not ended."""
        poll_interval = max(poll_interval, MIN_POLL_INTERVAL)
        seen: dict[str, Any] | None = None

        def look() -> Look[RunInfo | None]:
            nonlocal seen
            document = self.get_document(run_id)
            changed, seen = document != seen, document
            if not RunStatus(document["status"]).is_terminal:
                return Look(None, changed=changed)
            ended = self.get_document(run_id, items=True) if items else document
            return Look(RunInfo.from_document(ended), done=True, changed=True)

        ceiling = max(MAX_POLL_INTERVAL, poll_interval)
        info = poll(look, interval=poll_interval, max_interval=ceiling, growth=2, timeout=timeout)
        if info.value is None:
            status = seen["status"] if seen is not None else "unknown"
            raise WaitTimeout(
                f"run {run_id} is still {status} after {timeout:g} s of waiting; "
                "it goes on (wait again, or cancel it)",
                run_id=run_id,
                status=status,
            )
        return info.value

    # -- changing runs -----------------------------------------------------------------------

    def control(
        self,
        run_id: str,
        control: Control | str,
        reason: str | None = None,
        budget: BudgetLike = None,
        *,
        task: str | None = None,
    ) -> RunInfo:
        """Apply ``control`` (pause, resume, cancel, retry, compensate); the run after.

        NotFound for an unknown run; ControlRefused, saying why, when the control does not
        apply to the run as it is (nothing is changed then). Needs an operator's token.
        ``budget`` (resume only): new limits of the run's budget; ``task`` (retry only):
        retry from that task (NotFound naming it when the run has none).
        """
        document = self.control_document(run_id, control, reason, budget, task=task)
        return RunInfo.from_document(document)

    def control_document(
        self,
        run_id: str,
        control: Control | str,
        reason: str | None = None,
        budget: BudgetLike = None,
        *,
        task: str | None = None,
    ) -> dict[str, Any]:
        """:meth:`control`, returning the run document as the control left the run."""
        wanted = Control(control)
        body: dict[str, Any] | None = {"reason": reason} if reason is not None else None
        limits = budget_of(budget)
        if limits is not None:
            body = {**(body or {}), "budget": limits.as_json()}
        if task is not None:
            body = {**(body or {}), "task": task}
        try:
            document: dict[str, Any] = self._http.json(
                "POST", f"/runs/{segment(run_id)}/{wanted.value}", body=body
            )
        except ConflictError as refused:
            raise self._refusal(refused, run_id, wanted) from None
        log.info("run %s: %s applied, now %s", run_id, wanted.value, document["status"])
        return document

    def _refusal(self, refused: ConflictError, run_id: str, control: Control) -> TreadleError:
        """The API's 409 as :class:`ControlRefused`, with the run's status now."""
        try:
            status = RunStatus(self.get_document(run_id)["status"])
        except TreadleError:
            return refused
        return ControlRefused(str(refused), run_id=run_id, control=control, status=status)

    def pause(self, run_id: str, reason: str | None = None) -> RunInfo:
        """Start nothing new; the run is ``paused`` once its running tasks have finished."""
        return self.control(run_id, Control.PAUSE, reason)

    def resume(self, run_id: str, reason: str | None = None, budget: BudgetLike = None) -> RunInfo:
        """Continue a paused (or pausing) run exactly where it stopped, child runs included;
        ``budget`` sets new limits of its budget first (``{"cost_usd": 50}``)."""
        return self.control(run_id, Control.RESUME, reason, budget)

    def retry(self, run_id: str, reason: str | None = None, *, task: str | None = None) -> RunInfo:
        """Re-run what failed, timed out or was cancelled in an ended run; with ``task``,
        only that task, the flow going on from it (as :meth:`treadle.Client.retry`)."""
        return self.control(run_id, Control.RETRY, reason, task=task)

    def compensate(self, run_id: str, reason: str | None = None) -> RunInfo:
        """Undo the run's completed work with the tasks' ``compensate`` actions, newest first."""
        return self.control(run_id, Control.COMPENSATE, reason)

    def cancel(self, run_id: str, reason: str | None = None) -> RunInfo:
        """Cancel the run (and its child runs); a run that already ended is left as it is
        and returned, as :meth:`treadle.Client.cancel` does (the API itself answers 409)."""
        try:
            return self.control(run_id, Control.CANCEL, reason)
        except ControlRefused:
            return self.get(run_id)

    # -- definition versions -----------------------------------------------------------------

    def versions(self, ref: str) -> list[VersionInfo]:
        """Every published version of ``ref``, oldest first: hash, author, time, run count.

        NotFound when nothing is published under ``ref``.
        """
        return versions_of(self._http.json("GET", f"/workflows/{segment(ref)}/versions"), ref)

    # -- people and outside events -----------------------------------------------------------

    def respond(self, inquiry_id: str, response: Any) -> InquiryInfo:
        """Answer a pending inquiry; the schedulers carry the run on from there.

        As :meth:`treadle.Client.respond`: ParameterError (naming every problem) when the
        answer does not fit the inquiry's schema, NotFound for an unknown id, ConflictError
        when it is no longer pending. The responder recorded is the token's
        (``token:<name>``); it needs an operator's token. Returns the inquiry, answered.
        """
        return InquiryInfo.model_validate(self.respond_document(inquiry_id, response))

    def respond_document(self, inquiry_id: str, response: Any) -> dict[str, Any]:
        """:meth:`respond`, returning the inquiry as the API shows it (``GET
        /inquiries/{id}``: its run, deadline, answer and responder too)."""
        path = f"/inquiries/{segment(inquiry_id)}/respond"
        shown: dict[str, Any] = self._http.json("POST", path, body=response)
        log.info("inquiry %s of run %s answered", inquiry_id, shown.get("run"))
        return shown

    def inquiry(self, inquiry_id: str) -> dict[str, Any]:
        """One inquiry as the API shows it (its run's secret values as ``***``); NotFound
        for an unknown id."""
        shown: dict[str, Any] = self._http.json("GET", f"/inquiries/{segment(inquiry_id)}")
        return shown

    def inquiries(
        self, *, status: InquiryStatus | str | None = None, run: str | None = None
    ) -> list[dict[str, Any]]:
        """Every inquiry (of ``status``, of ``run``), oldest first, as the API shows them,
        read a page at a time."""
        params: dict[str, str | int] = {"limit": INQUIRY_PAGE}
        if status is not None:
            params["status"] = InquiryStatus(status).value
        if run is not None:
            params["run"] = run
        shown: list[dict[str, Any]] = []
        while True:
            page = self._http.json("GET", "/inquiries", params=params)
            shown.extend(page["items"])
            if page.get("next_cursor") is None:
                return shown
            params["cursor"] = page["next_cursor"]

    def send_event(
        self,
        event_type: str,
        *,
        subject: str | None = None,
        data: Any = None,
        event_id: str | None = None,
    ) -> EventOutcome:
        """Send an outside event: start the runs it triggers, release the waits it matches.

        As :meth:`treadle.Client.send_event`: the same ``event_id`` twice is a duplicate and
        changes nothing; ParameterError for an event that is not text type / JSON data.
        """
        body = {"type": event_type, "subject": subject, "data": data, "id": event_id}
        return event_outcome(self._http.json("POST", "/events", body=body))

    # -- the keystore ------------------------------------------------------------------------
    #
    # Entries as the API shows them: {"key", "value", "secret", "updated_at"}, a secret
    # entry's value always null. Reading needs any role; setting and deleting an admin's.

    def kv_list(self) -> list[dict[str, Any]]:
        """Every keystore entry, by key."""
        entries: list[dict[str, Any]] = self._http.json("GET", "/kv")["items"]
        return entries

    def kv_get(self, key: str) -> dict[str, Any]:
        """One keystore entry; NotFound when there is no such key."""
        entry: dict[str, Any] = self._http.json("GET", f"/kv/{segment(key)}")
        return entry

    def kv_set(self, key: str, value: Any, *, secret: bool = False) -> dict[str, Any]:
        """Create or replace an entry (runs started from now on read it); the entry."""
        body = {"value": value, "secret": secret}
        entry: dict[str, Any] = self._http.json("PUT", f"/kv/{segment(key)}", body=body)
        return entry

    def kv_delete(self, key: str) -> None:
        """Remove an entry (runs in flight keep their copy); NotFound when there is none."""
        self._http.call("DELETE", f"/kv/{segment(key)}")
