"""``treadle.ApiClient``: the database client's calls over HTTP, with the same answers.

Each test does the same thing through :class:`treadle.Client` (on the database) and through
:class:`treadle.ApiClient` (FastAPI's ``TestClient`` on an app over the same SQLite store)
and compares what they return, or the exception class and message they raise. The client
on its own (its settings, each error shape, answers that are not the API's) is tested in
``test_api_client_answers.py``.
"""

from __future__ import annotations

import textwrap
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from treadle.apiclient import ApiClient
from treadle.client import Client
from treadle.common.access import Role
from treadle.common.errors import (
    ConflictError,
    Forbidden,
    NotFound,
    ParameterError,
    Unauthenticated,
    WaitTimeout,
)
from treadle.common.loader import load_packs, load_workflow_text
from treadle.common.statuses import InquiryStatus, RunStatus
from treadle.scheduler.service.controls import Control, ControlRefused

PACKS = Path(__file__).resolve().parents[2] / "packs"

#: A run of this waits on a person at once: its first task asks.
ASK = """\
ref: api.ask
tasks:
  - name: approve
    action: core.ask
    input:
      prompt: "ship it?"
      schema: {type: object, properties: {ok: {type: boolean}}, required: [ok]}
"""

ApiFactory = Callable[[Role], ApiClient]


@pytest.fixture
def api_as(api: TestClient, tokens: dict[Role, str]) -> Iterator[ApiFactory]:
    """``api_as(role)``: an ApiClient sending that role's token through the test app."""
    made: list[ApiClient] = []

    def make(role: Role) -> ApiClient:
        client = ApiClient("http://testserver", tokens[role], transport=api)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def operator(api_as: ApiFactory) -> ApiClient:
    return api_as(Role.OPERATOR)


@pytest.fixture
def ask(client: Client) -> Callable[[], tuple[str, str]]:
    """Start a run of ``api.ask``: (run id, the id of the inquiry it waits on)."""
    client.register(load_workflow_text(textwrap.dedent(ASK), "<ask>"), catalog=load_packs([PACKS]))

    def start() -> tuple[str, str]:
        run_id = client.start("api.ask")
        [inquiry] = client.get(run_id).pending_inquiries
        return run_id, inquiry.id

    return start


def raised(call: Callable[[], object]) -> BaseException:
    """What ``call()`` raised (it must raise)."""
    with pytest.raises(Exception) as caught:  # noqa: PT011 - the test compares what it is
        call()
    return caught.value


def same_error(by_client: BaseException, by_api: BaseException) -> None:
    assert type(by_api) is type(by_client), (by_client, by_api)
    assert str(by_api) == str(by_client)


# -- reading runs -------------------------------------------------------------------------


def test_a_run_reads_as_the_client_reads_it(
    client: Client, operator: ApiClient, start_run: Callable[..., str]
) -> None:
    run_id = start_run("Ada")
    assert operator.get(run_id) == client.get(run_id)
    assert operator.get(run_id, items=True) == client.get(run_id, items=True)
    assert operator.get(run_id).parameters == {"name": "Ada", "password": "***"}
    assert operator.get_document(run_id)["tasks"][0]["items_summary"]["total"] == 5
    same_error(raised(lambda: client.get("r-nope")), raised(lambda: operator.get("r-nope")))


def test_items_page_as_the_client_pages_them(
    client: Client, operator: ApiClient, start_run: Callable[..., str]
) -> None:
    run_id = start_run()
    cursor: str | None = None
    pages = 0
    while True:
        by_api = operator.items(run_id, "each", cursor=cursor, limit=2)
        assert by_api == client.items(run_id, "each", cursor=cursor, limit=2)
        pages += 1
        cursor = by_api.next_cursor
        if cursor is None:
            break
    assert pages == 3
    same_error(
        raised(lambda: client.items(run_id, "nope")),
        raised(lambda: operator.items(run_id, "nope")),
    )
    assert isinstance(raised(lambda: operator.items(run_id, "each", cursor="bad")), ParameterError)


def test_runs_list_as_the_client_lists_them(
    client: Client, api_as: ApiFactory, start_run: Callable[..., str]
) -> None:
    viewer = api_as(Role.VIEWER)
    started = [start_run(f"n{i}") for i in range(3)] + [start_run(single=True)]
    client.cancel(started[0])
    assert viewer.list_runs() == client.list_runs()
    assert [s.id for s in viewer.list_runs().runs] == started[::-1]
    for where in (
        {"status": RunStatus.CANCELED},
        {"status": "running", "workflow": "api.fan_out"},
        {"workflow": "api.single"},
    ):
        assert viewer.list_runs(**where) == client.list_runs(**where)  # type: ignore[arg-type]
    first = client.list_runs().runs[-1].created_at
    assert first is not None
    assert viewer.list_runs(created_after=first) == client.list_runs(created_after=first)
    later = first + timedelta(microseconds=1)
    assert viewer.list_runs(created_before=later) == client.list_runs(created_before=later)

    cursor: str | None = None
    paged: list[str] = []
    while True:
        page = viewer.list_runs(limit=3, cursor=cursor)
        assert page == client.list_runs(limit=3, cursor=cursor)
        paged += [s.id for s in page.runs]
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert paged == started[::-1]

    same_error(
        raised(lambda: client.list_runs(cursor="bad")),
        raised(lambda: viewer.list_runs(cursor="bad")),
    )
    assert isinstance(raised(lambda: viewer.list_runs(limit=0)), ParameterError)
    assert isinstance(raised(lambda: client.list_runs(limit=0)), ParameterError)
    with pytest.raises(ValueError, match="nope"):
        viewer.list_runs(status="nope")


# -- starting and waiting ---------------------------------------------------------------------


def test_start_as_the_client_starts(client: Client, operator: ApiClient) -> None:
    run_id = operator.start("api.fan_out", {"name": "Grace"}, idempotency_key="order-42")
    assert operator.start("api.fan_out", {"name": "Other"}, idempotency_key="order-42") == run_id
    assert client.start("api.fan_out", {"name": "x"}, idempotency_key="order-42") == run_id
    info = client.get(run_id)
    assert info.status is RunStatus.RUNNING
    assert info.parameters == {"name": "Grace", "password": "***"}
    assert client.get(operator.start("api.single", version=1)).version == 1

    by_client, by_api = (
        raised(lambda: client.start("api.fan_out", {"name": 3, "extra": 1})),
        raised(lambda: operator.start("api.fan_out", {"name": 3, "extra": 1})),
    )
    assert isinstance(by_client, ParameterError)
    assert isinstance(by_api, ParameterError)
    assert by_api.problems == by_client.problems
    assert by_api.subject == by_client.subject
    for ref, version in (("api.nope", None), ("api.single", 7)):
        assert isinstance(raised(lambda r=ref, v=version: client.start(r, version=v)), NotFound)
        missing = raised(lambda r=ref, v=version: operator.start(r, version=v))
        assert isinstance(missing, NotFound)
        assert ref in str(missing)


def test_wait_returns_the_run_once_it_ended_or_times_out_as_the_client_does(
    client: Client, operator: ApiClient, start_run: Callable[..., str]
) -> None:
    waited, timed_out = start_run(), start_run()
    ender = threading.Timer(0.3, lambda: client.cancel(waited, "enough"))
    ender.start()
    try:
        info = operator.wait(waited, timeout=30, items=True)
    finally:
        ender.join()
    assert info.status is RunStatus.CANCELED
    assert info == client.wait(waited, items=True)
    assert info.tasks[0].items is not None

    by_client = raised(lambda: client.wait(timed_out, timeout=0.2))
    by_api = raised(lambda: operator.wait(timed_out, timeout=0.2))
    same_error(by_client, by_api)
    assert isinstance(by_api, WaitTimeout)
    assert (by_api.run_id, by_api.status) == (timed_out, "running")
    same_error(raised(lambda: client.wait("r-nope")), raised(lambda: operator.wait("r-nope")))


# -- controls ------------------------------------------------------------------------------


def test_controls_change_the_run_as_the_client_does(
    client: Client, operator: ApiClient, start_run: Callable[..., str]
) -> None:
    by_client, by_api = start_run(single=True), start_run(single=True)

    def both(control: Control, reason: str | None = None) -> None:
        done = client.control(by_client, control, reason)
        shown = operator.control(by_api, control, reason)
        assert shown.status is done.status, control
        assert [t.status for t in shown.tasks] == [t.status for t in done.tasks]
        assert operator.get(by_api).status is client.get(by_client).status

    both(Control.PAUSE, "maintenance")
    refused_c = raised(lambda: client.pause(by_client))
    refused_a = raised(lambda: operator.pause(by_api))
    assert isinstance(refused_a, ControlRefused)
    assert isinstance(refused_c, ControlRefused)
    assert str(refused_a) == str(refused_c).replace(by_client, by_api)
    assert (refused_a.run_id, refused_a.control, refused_a.status) == (
        by_api,
        Control.PAUSE,
        RunStatus.PAUSING,
    )
    both(Control.RESUME)
    both(Control.CANCEL, "order withdrawn")
    assert operator.get(by_api).error == client.get(by_client).error
    assert "order withdrawn" in str(operator.get(by_api).error)
    # canceling an ended run leaves it as it is (the API itself answers 409)
    assert operator.cancel(by_api) == operator.get(by_api)
    assert client.cancel(by_client).status is RunStatus.CANCELED
    both(Control.RETRY)
    both(Control.COMPENSATE)
    same_error(raised(lambda: client.pause("r-nope")), raised(lambda: operator.pause("r-nope")))


def test_controls_need_an_operator_and_a_valid_token(
    api: TestClient, api_as: ApiFactory, start_run: Callable[..., str]
) -> None:
    run_id = start_run()
    forbidden = raised(lambda: api_as(Role.VIEWER).pause(run_id))
    assert isinstance(forbidden, Forbidden)
    assert "operator role" in str(forbidden)
    for token in ("trd_not-a-token", None):
        with ApiClient("http://testserver", token, transport=api) as anonymous:
            refused = raised(lambda: anonymous.get(run_id))
            assert isinstance(refused, Unauthenticated)


# -- definitions, people, events, keystore ---------------------------------------------------


def test_versions_as_the_client_lists_them(client: Client, api_as: ApiFactory) -> None:
    viewer = api_as(Role.VIEWER)
    client.start("api.single")
    assert viewer.versions("api.single") == client.versions("api.single")
    assert viewer.versions("api.single")[0].runs == 1
    missing = raised(lambda: viewer.versions("api.nope"))
    assert isinstance(missing, NotFound)
    assert isinstance(raised(lambda: client.versions("api.nope")), NotFound)


def test_respond_answers_an_inquiry_as_the_client_does(
    client: Client, operator: ApiClient, ask: Callable[[], tuple[str, str]]
) -> None:
    (_run_c, inquiry_c), (run_a, inquiry_a) = ask(), ask()

    by_client = raised(lambda: client.respond(inquiry_c, {"ok": "yes"}))
    by_api = raised(lambda: operator.respond(inquiry_a, {"ok": "yes"}))
    assert isinstance(by_client, ParameterError)
    assert isinstance(by_api, ParameterError)
    assert by_api.problems == by_client.problems

    answered_c = client.respond(inquiry_c, {"ok": True})
    answered_a = operator.respond(inquiry_a, {"ok": True})
    assert answered_a.status is answered_c.status is InquiryStatus.ANSWERED
    assert answered_a.model_dump(exclude={"id"}) == answered_c.model_dump(exclude={"id"})
    assert [i.status for i in operator.get(run_a).inquiries] == [InquiryStatus.ANSWERED]
    shown = operator.inquiry(inquiry_a)
    assert (shown["run"], shown["response"], shown["responder"]) == (
        run_a,
        {"ok": True},
        "token:operator-token",
    )
    assert [i["id"] for i in operator.inquiries(run=run_a)] == [inquiry_a]
    assert operator.inquiries(status="pending") == []

    again_c = raised(lambda: client.respond(inquiry_c, {"ok": False}))
    again_a = raised(lambda: operator.respond(inquiry_a, {"ok": False}))
    assert isinstance(again_c, ConflictError)
    assert isinstance(again_a, ConflictError)
    assert str(again_a) == str(again_c).replace(inquiry_c, inquiry_a)
    assert isinstance(raised(lambda: operator.respond("iq_nope", {})), NotFound)


def test_send_event_as_the_client_sends_it(client: Client, operator: ApiClient) -> None:
    by_api = operator.send_event("order.placed", subject="o-1", data={"n": 1}, event_id="ev-1")
    by_client = client.send_event("order.placed", subject="o-2", data={"n": 2}, event_id="ev-2")
    assert len(by_api.started_runs) == len(by_client.started_runs) == 1
    assert (by_api.event_id, by_api.duplicate, by_api.updated_runs) == ("ev-1", False, [])
    assert client.get(by_api.started_runs[0]).workflow == "api.on_order"
    again = operator.send_event("order.placed", event_id="ev-1")
    assert again.duplicate
    assert again.started_runs == []
    assert operator.send_event("nothing.listens").started_runs == []
    assert isinstance(raised(lambda: operator.send_event("")), ParameterError)
    assert isinstance(raised(lambda: client.send_event("")), ParameterError)


def test_the_keystore_is_read_by_anyone_and_changed_by_admins(
    api_as: ApiFactory, client: Client
) -> None:
    admin, viewer = api_as(Role.ADMIN), api_as(Role.VIEWER)
    entry = admin.kv_set("region", {"name": "eu-west"})
    assert (entry["key"], entry["value"], entry["secret"]) == ("region", {"name": "eu-west"}, False)
    assert viewer.kv_get("region")["value"] == {"name": "eu-west"}
    assert [e["key"] for e in viewer.kv_list()] == ["region"]
    with client.store.unit_of_work() as uow:
        assert uow.kv_get("region") == {"name": "eu-west"}
    assert isinstance(raised(lambda: viewer.kv_set("region", 1)), Forbidden)
    admin.kv_delete("region")
    assert viewer.kv_list() == []
    assert isinstance(raised(lambda: viewer.kv_get("region")), NotFound)
    assert isinstance(raised(lambda: admin.kv_delete("region")), NotFound)
    assert isinstance(raised(lambda: admin.kv_set("_reserved", 1)), ParameterError)
