"""The Python client applications use to start, follow and cancel runs.

A client talks only to the database: starting a run writes the run and its first
dispatches in one transaction and wakes the schedulers (PostgreSQL ``NOTIFY``); the
``treadle scheduler`` processes and the workers do the rest. So an application needs no
broker connection and no packs, only ``TREADLE_DATABASE_URL``::

    from treadle import Client

    with Client("postgresql+psycopg2://treadle@db:5432/treadle") as client:
        run_id = client.start("examples.hello_world", {"name": "Ada"}, idempotency_key="order-42")
        info = client.wait(run_id, timeout=60)
        print(info.status, info.output)

Runs start from the definition versions published in the database (by the scheduler from
its packs, by ``treadle workflows register``, or by :meth:`Client.register`). A client is
safe to share between threads; each call uses its own short transaction.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from treadle.clientlib.audit import Auditor, Change, database_principal
from treadle.clientlib.changes import answer, control_run, publish_and_start, send_event
from treadle.clientlib.connection import check_schema, database_location, open_client_store
from treadle.clientlib.connection import reaching as _reaching
from treadle.clientlib.control_shortcuts import BudgetLike, ControlShortcuts, budget_of
from treadle.clientlib.publishing import Registered
from treadle.clientlib.reading import document_after_control, read_items, read_run, wait_for_end
from treadle.clientlib.registering import DefinitionRegistration
from treadle.clientlib.starting import run_starter, unknown_definition_message
from treadle.clientlib.versions import VersionInfo, definition_text, list_versions
from treadle.clientlib.views import (
    InquiryInfo,
    ItemInfo,
    ItemPage,
    ItemSummaryInfo,
    RunInfo,
    TaskInfo,
)
from treadle.common.access import DEFAULT_WORKSPACE
from treadle.common.catalog import Catalog
from treadle.common.errors import (
    DefinitionError,
    NotFound,
    ParameterError,
    ServiceUnavailable,
    WaitTimeout,
)
from treadle.common.settings import Settings, os_login, settings_from_environment
from treadle.common.spec import WorkflowSpec
from treadle.common.statuses import RunStatus
from treadle.scheduler.service.controls import Control, ControlRefused
from treadle.scheduler.service.definitions import Definitions, PinnedDefinition
from treadle.scheduler.service.event_outcome import EventOutcome
from treadle.scheduler.service.starting import RunOptions, RunStarter
from treadle.scheduler.service.triggers import TriggerIndex
from treadle.scheduler.store import RunFilter, RunPage, RunSummary, Store, UnitOfWork
from treadle.scheduler.store.base import utc_now

__all__ = [
    "Client",
    "Control",
    "ControlRefused",
    "DefinitionError",
    "EventOutcome",
    "InquiryInfo",
    "ItemInfo",
    "ItemPage",
    "ItemSummaryInfo",
    "NotFound",
    "ParameterError",
    "Registered",
    "RunInfo",
    "RunPage",
    "RunSummary",
    "ServiceUnavailable",
    "TaskInfo",
    "VersionInfo",
    "WaitTimeout",
]

log = logging.getLogger("treadle.client")


def default_identity() -> dict[str, Any]:
    """Who starts runs unless told otherwise: the OS login, via the client."""
    return {"login": os_login(), "via": "client"}


class Client(ControlShortcuts, DefinitionRegistration):
    """Starts runs of published workflows and reads them back; see the module docstring.

    ``database_url`` defaults to ``settings.database_url`` (``TREADLE_DATABASE_URL``).
    Nothing connects until the first call; every call raises ``ServiceUnavailable`` within
    about ``connect_timeout`` seconds when the database cannot be reached.
    """

    def __init__(
        self,
        database_url: str | None = None,
        *,
        settings: Settings | None = None,
        connect_timeout: float = 5.0,
        identity: Mapping[str, Any] | None = None,
    ) -> None:
        self._settings = settings if settings is not None else settings_from_environment()
        url = database_url or self._settings.database_url
        self._store = open_client_store(url, connect_timeout, self._settings.lifecycle_events)
        self._store.prepared_statements = self._settings.prepared_statements
        self._definitions = Definitions(self._store, Catalog())
        self._triggers = TriggerIndex()
        self._identity = dict(identity) if identity is not None else default_identity()
        # changes are audited as client:<login> (cli:<login> for the treadle commands)
        principal = database_principal(self._identity)
        self._auditor = Auditor(self._store.unit_of_work, principal, utc_now)
        self._schema_checked = False
        self._lock = threading.Lock()

    # -- context -----------------------------------------------------------------------------

    @property
    def database(self) -> str:
        """Where runs are stored (``host:port/database``), for messages."""
        return database_location(self._store.engine.url)

    @property
    def store(self) -> Store:
        """The store underneath, for Treadle's own commands; applications need not use it."""
        return self._store

    def close(self) -> None:
        self._store.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    @contextmanager
    def _session(self) -> Iterator[None]:
        """Connection failures inside become ServiceUnavailable; the schema is checked once."""
        with _reaching(self._store):
            if not self._schema_checked:
                with self._lock:
                    if not self._schema_checked:
                        check_schema(self._store)
                        self._schema_checked = True
            yield

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

        Raises NotFound when nothing is published under ``ref``, and ParameterError (naming
        every bad parameter, storing nothing) when the parameters do not fit. With an
        ``idempotency_key`` already used, returns that run's id and starts nothing.
        ``priority``: 0-9, 9 first (``docs/flow-control.md``); ``seed``: the run's seed;
        ``budget``: limits winning over the workflow's (``docs/governance.md``)."""
        options = RunOptions(
            self._identity, idempotency_key, priority=priority, seed=seed, budget=budget_of(budget)
        )
        details: dict[str, Any] = {"version": version, "idempotency_key": idempotency_key}
        with self._session(), self._auditor.audited(Change("run.start", ref, details)) as uow:
            pinned = self._pinned(ref, version, uow)
            started = self._starter().start_pinned_in(uow, pinned, parameters or {}, options)
            details.update(version=pinned.version, run=started.run_id, created=started.created)
        log.info("run %s of %s v%d started", started.run_id, ref, pinned.version)
        return started.run_id

    def start_many(
        self,
        ref: str,
        parameter_sets: Sequence[Mapping[str, Any]],
        *,
        version: int | None = None,
        priority: int | None = None,
        budget: BudgetLike = None,
    ) -> list[str]:
        """Start one run of ``ref`` per parameter set, all in one transaction (as Hatchet's
        bulk run): their ids, in the sets' order. Much cheaper than as many :meth:`start`
        calls (docs/scaling.md). Every set is checked first; a bad one raises
        ParameterError naming its position, and nothing is started. Each run gets its own
        seed; a batch takes no idempotency key. Recorded as one ``run.start`` audit entry
        listing the runs."""
        options = RunOptions(self._identity, priority=priority, budget=budget_of(budget))
        details: dict[str, Any] = {"version": version, "count": len(parameter_sets)}
        with self._session(), self._auditor.audited(Change("run.start", ref, details)) as uow:
            pinned = self._pinned(ref, version, uow)
            run_ids = self._starter().start_many_in(uow, pinned, parameter_sets, options)
            details.update(version=pinned.version, runs=run_ids)
        log.info("%d runs of %s v%d started", len(run_ids), ref, pinned.version)
        return run_ids

    def start_spec(
        self,
        spec: WorkflowSpec,
        parameters: Mapping[str, Any] | None = None,
        *,
        catalog: Catalog | None = None,
        idempotency_key: str | None = None,
        priority: int | None = None,
        seed: int | None = None,
        budget: BudgetLike = None,
    ) -> str:
        """Publish ``spec`` (a new version only if it changed) and start a run of it, in
        one transaction. Parameters are checked before anything is published or stored."""
        options = RunOptions(
            self._identity, idempotency_key, priority=priority, seed=seed, budget=budget_of(budget)
        )
        with self._session():
            run_id = publish_and_start(
                self._auditor,
                self._starter(),
                spec,
                parameters or {},
                options=options,
                publish=lambda uow: self._publish(uow, [spec], catalog)[0],
            )
        log.info("run %s of %s started", run_id, spec.ref)
        return run_id

    def _pinned(self, ref: str, version: int | None, uow: UnitOfWork) -> PinnedDefinition:
        try:
            return self._definitions.pinned(ref, version, uow, workspace=DEFAULT_WORKSPACE)
        except NotFound:
            raise NotFound(unknown_definition_message(self._store, ref, version)) from None

    def _starter(self) -> RunStarter:
        # One service per call: its cache of run states is not shared between threads.
        return run_starter(self._store, self._definitions, self._settings, clock=utc_now)

    # -- reading runs ------------------------------------------------------------------------

    def get(self, run_id: str, *, items: bool = False) -> RunInfo:
        """The run as it is now, read in one snapshot (NotFound for an unknown id).

        with_items tasks carry ``items_summary``; their ``items`` only with ``items=True``
        (for big runs, page them with :meth:`items`). Never fails because the run is busy.
        """
        with self._session():
            return read_run(self._store, run_id, items=items)

    def items(
        self, run_id: str, task: str, *, cursor: str | None = None, limit: int = 100
    ) -> ItemPage:
        """One page of the items of ``task`` (its latest execution), in item order.

        Pass the page's ``next_cursor`` back for the next one (None after the last).
        NotFound for an unknown run or a task that has not started; ParameterError for a
        bad cursor or a ``limit`` outside 1..1000.
        """
        with self._session():
            return read_items(self._store, run_id, task, cursor=cursor, limit=limit)

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

        Pages cover every matching run once, whatever starts meanwhile (keyset pagination).
        ``created_after`` is inclusive, ``created_before`` exclusive. ParameterError for a
        cursor no listing returned or a ``limit`` outside 1..1000.
        """
        wanted = RunStatus(status) if status is not None else None
        where = RunFilter(wanted, workflow, parent, created_after, created_before)
        with self._session(), self._store.unit_of_work() as uow:
            return uow.list_runs_page(where, limit=limit, cursor=cursor)

    def wait(
        self,
        run_id: str,
        timeout: float | None = None,
        *,
        poll_interval: float = 0.05,
        items: bool = False,
    ) -> RunInfo:
        """Poll until the run ends and return it; WaitTimeout after ``timeout`` seconds.

        Each poll reads only the run's version and status; the run document is built
        once, when the run has ended, in the same snapshot (``items`` as in :meth:`get`).
        Polls start every ``poll_interval`` seconds and back off to 0.5 s while the run does
        not change. A run that waits on an inquiry is not ended: it is waited for.
        """
        return wait_for_end(
            self._store,
            self._session,
            run_id,
            timeout=timeout,
            poll_interval=poll_interval,
            items=items,
        )

    # -- changing runs -----------------------------------------------------------------------
    #
    # Each control is checked and applied in one transaction with the run locked; the
    # scheduler is woken (NOTIFY) to carry out what it starts. A control that does not fit
    # the run's status raises ControlRefused (a ConflictError) and changes nothing.

    def control(
        self,
        run_id: str,
        control: Control | str,
        reason: str | None = None,
        budget: BudgetLike = None,
        *,
        task: str | None = None,
    ) -> RunInfo:
        """Apply ``control`` (pause, resume, cancel, retry, compensate); returns the run after.

        Raises NotFound for an unknown run and ControlRefused, explaining why, when the
        control does not apply to the run as it is (nothing is changed then). ``budget``
        (resume only): new limits of the run's budget (``docs/governance.md``); ``task``
        (retry only): retry from that task (NotFound naming it when the run has none).
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
        wanted, limits = Control(control), budget_of(budget)
        with self._session():
            runs = self._starter().runs
            state = control_run(
                self._auditor, runs, run_id, wanted, reason=reason, budget=limits, task=task
            )
            document = document_after_control(self._store, state)
        log.info("run %s: %s applied, now %s", run_id, wanted.value, document["status"])
        return document

    # -- definition versions -----------------------------------------------------------------

    def versions(self, ref: str) -> list[VersionInfo]:
        """Every published version of ``ref``, oldest first: hash, author, time, run count.

        Raises NotFound when nothing is published under ``ref``.
        """
        with self._session():
            try:
                with self._store.unit_of_work() as uow:
                    return list_versions(uow, ref)
            except NotFound:
                raise NotFound(unknown_definition_message(self._store, ref, None)) from None

    def definition_text(
        self, ref: str, version: int | None = None, *, as_json: bool = False
    ) -> str:
        """Version ``version`` of ``ref`` (the latest when None) as readable YAML or JSON."""
        with self._session():
            try:
                with self._store.unit_of_work() as uow:
                    owner = uow.definition_owner(ref, DEFAULT_WORKSPACE) or ""
                    stored = uow.get_definition(ref, version, workspace=owner)
            except NotFound:
                raise NotFound(unknown_definition_message(self._store, ref, version)) from None
        return definition_text(stored.documents, as_json=as_json)

    # -- people and outside events -----------------------------------------------------------

    def respond(
        self, inquiry_id: str, response: Any, *, responder: str | None = None
    ) -> InquiryInfo:
        """Answer a pending inquiry; the schedulers carry the run on from there.

        The answer is checked against the inquiry's schema first: ParameterError (naming
        every problem) leaves the run unchanged. NotFound for an unknown id; ConflictError
        when the inquiry was already answered, timed out or canceled. ``responder``
        defaults to this client's login. Returns the inquiry, now answered.
        """
        who = responder if responder is not None else self._identity.get("login")
        with self._session():
            entry = answer(self._auditor, self._starter().runs, inquiry_id, response, responder=who)
        log.info("inquiry %s of run %s answered", inquiry_id, entry.run_id)
        return InquiryInfo.model_validate(entry, from_attributes=True)

    def send_event(
        self,
        event_type: str,
        *,
        subject: str | None = None,
        data: Any = None,
        event_id: str | None = None,
    ) -> EventOutcome:
        """Send an outside event: start the runs it triggers, release the waits it matches.

        The same ``event_id`` twice: the second is a duplicate and changes nothing (without
        an id, a new one is made). Only waits that began before the event count. Raises
        ParameterError for an event that is not text type / JSON data.
        """
        from treadle.scheduler.service.events import EventRouter

        with self._session():
            router = EventRouter(self._starter(), self._triggers, identity=self._identity)
            return send_event(
                self._auditor, router, event_type, subject=subject, data=data, event_id=event_id
            )

    # -- publishing definitions: register, register_all (clientlib/registering.py) -------------
