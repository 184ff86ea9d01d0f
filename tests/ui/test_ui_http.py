"""The web UI's server side without a browser: sessions, CSRF, roles, 4xx pages, assets,
the DAG layout and the forms built from schemas.

In-process: FastAPI's ``TestClient`` on ``create_app`` over a SQLite database of the
test's own, with a clock the test moves (as ``tests/api`` does). No scheduler runs, so a
started run stays where it is.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.api.conftest import FakeClock, issue_token
from tests.ui.conftest import ASK, PACKS

from treadle.api.app import create_app
from treadle.api.ui.assets import asset
from treadle.api.ui.dag_layout import NODE_HEIGHT, NODE_WIDTH, lay_out
from treadle.api.ui.schema_form import JSON_FIELD, form_fields, form_value
from treadle.api.ui.sessions import SESSION_COOKIE, SESSION_SECONDS
from treadle.client import Client
from treadle.common.access import DEFAULT_WORKSPACE, Principal, Role
from treadle.common.errors import ParameterError
from treadle.common.loader import load_packs, load_workflow_text
from treadle.common.settings import Settings
from treadle.scheduler.service.access import revoke
from treadle.scheduler.store import Store

SINGLE = """\
ref: ui.single
tasks:
  - name: only
    action: core.noop
"""


@pytest.fixture
def client(store: Store) -> Iterator[Client]:
    with Client(str(store.engine.url)) as made:
        catalog = load_packs([PACKS])
        for text in (SINGLE, ASK):
            made.register(load_workflow_text(textwrap.dedent(text), "<ui>"), catalog=catalog)
        yield made


def _log_in(web: TestClient, token: str) -> Any:
    form = web.get("/ui/login")
    guard = re.search(r'name="guard" value="([^"]+)"', form.text)
    assert guard is not None
    return web.post("/ui/login", data={"guard": guard.group(1), "token": token, "next": "/ui/runs"})


def _csrf(web: TestClient, path: str = "/ui/runs") -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', web.get(path).text)
    assert found is not None
    return found.group(1)


def test_logging_in_sets_a_sealed_strict_http_only_cookie_and_logging_out_clears_it(
    web: TestClient, store: Store, clock: FakeClock
) -> None:
    token = issue_token(store, "ops", Role.OPERATOR, clock())
    assert web.get("/ui/runs").headers["location"] == "/ui/login?next=%2Fui%2Fruns"
    answer = _log_in(web, token)
    assert (answer.status_code, answer.headers["location"]) == (303, "/ui/runs")
    cookie = next(h for h in answer.headers.get_list("set-cookie") if SESSION_COOKIE in h)
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Secure" not in cookie
    assert token not in cookie  # sealed, not readable
    page = web.get("/ui/runs")
    assert page.status_code == 200
    assert 'ops <span class="role">(operator, workspace default)</span>' in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["cache-control"] == "no-store"
    out = web.post("/ui/logout", data={"csrf": _csrf(web)})
    assert out.status_code == 303
    assert web.get("/ui/runs").status_code == 303  # back to the login page


def test_the_cookie_is_secure_over_https(store: Store, clock: FakeClock) -> None:
    token = issue_token(store, "ops", Role.OPERATOR, clock())
    app = create_app(Settings(database_url=str(store.engine.url)), store=store, clock=clock)
    with TestClient(app, base_url="https://ui.example", follow_redirects=False) as web:
        cookie = next(
            h for h in _log_in(web, token).headers.get_list("set-cookie") if SESSION_COOKIE in h
        )
    assert "Secure" in cookie


def test_a_bad_token_a_forged_cookie_a_revoked_token_and_an_old_session_get_the_login_page(
    web: TestClient, store: Store, clock: FakeClock
) -> None:
    refused = _log_in(web, "trd_not_a_token")
    assert refused.status_code == 401
    assert "not valid" in refused.text
    assert "trd_not_a_token" not in refused.text
    assert SESSION_COOKIE not in refused.headers.get("set-cookie", "")
    assert _log_in(web, "").status_code == 401
    guardless = web.post("/ui/login", data={"token": "x", "guard": "forged"})
    assert guardless.status_code == 403

    web.cookies.set(SESSION_COOKIE, "gAAAAA-forged")
    assert web.get("/ui/runs").status_code == 303
    web.cookies.clear()

    token = issue_token(store, "ops", Role.OPERATOR, clock())
    _log_in(web, token)
    assert web.get("/ui/runs").status_code == 200
    clock.advance(SESSION_SECONDS + 1)
    assert web.get("/ui/runs").headers["location"].startswith("/ui/login")

    _log_in(web, token)
    with store.unit_of_work() as uow:
        [entry] = [t for t in uow.list_tokens() if t.name == "ops"]
        revoke(uow, entry.id, by=Principal("test", Role.ADMIN, DEFAULT_WORKSPACE), now=clock())
    clock.advance(60)  # past the token cache
    assert web.get("/ui/runs").status_code == 303
    fetched = web.get("/ui/runs/rows", headers={"X-Treadle-Fetch": "1"})
    assert fetched.status_code == 401


def test_a_change_without_the_csrf_token_or_the_role_is_refused_and_changes_nothing(
    web: TestClient, store: Store, clock: FakeClock, client: Client
) -> None:
    run_id = client.start("ui.single")
    _log_in(web, issue_token(store, "ops", Role.OPERATOR, clock()))
    no_token = web.post(f"/ui/runs/{run_id}/control/cancel", data={"reason": "x"})
    assert no_token.status_code == 403
    assert "CSRF" in no_token.text
    wrong = web.post(f"/ui/runs/{run_id}/control/cancel", data={"csrf": "nope"})
    assert wrong.status_code == 403
    assert client.get(run_id).status.value == "running"

    _log_in(web, issue_token(store, "look", Role.VIEWER, clock()))
    page = web.get(f"/ui/runs/{run_id}")
    assert "Cancel run" not in page.text
    assert "<button" not in page.text.split("<main")[1]
    csrf = _csrf(web)
    refused = web.post(f"/ui/runs/{run_id}/control/cancel", data={"csrf": csrf})
    assert refused.status_code == 403
    assert "needs the operator role" in refused.text
    assert web.get("/ui/schedules").status_code == 403
    assert client.get(run_id).status.value == "running"

    _log_in(web, issue_token(store, "ops2", Role.OPERATOR, clock()))
    done = web.post(f"/ui/runs/{run_id}/control/cancel", data={"csrf": _csrf(web)})
    assert (done.status_code, done.headers["location"]) == (303, f"/ui/runs/{run_id}")
    assert client.get(run_id).status.value == "canceled"
    again = web.post(f"/ui/runs/{run_id}/control/cancel", data={"csrf": _csrf(web)})
    assert again.status_code == 409
    assert "<h1>Not possible now</h1>" in again.text


#: A bad request of each kind, the status it gets, and what its page says.
BAD_REQUESTS = [
    ("/ui/runs?status=bogus", 422, "status &#39;bogus&#39; is not one of"),
    ("/ui/runs?cursor=zzz", 422, "not a next cursor"),
    ("/ui/runs/r-nope", 404, "run r-nope not found"),
    ("/ui/runs/r-nope/stream", 404, "run r-nope not found"),
    ("/ui/workflows/no.such", 404, "no.such"),
    ("/ui/workflows/ui.single/diff", 409, "no version before"),
    ("/ui/workflows/ui.single?version=0", 422, "version"),
    ("/ui/schedules/none", 404, "none"),
    ("/ui/static/nothing.exe", 404, "no asset"),
]


def test_bad_input_gets_a_4xx_page_naming_it(
    web: TestClient, store: Store, clock: FakeClock, client: Client
) -> None:
    _log_in(web, issue_token(store, "boss", Role.ADMIN, clock()))
    answers = {path: web.get(path) for path, _status, _says in BAD_REQUESTS}
    for path, status, says in BAD_REQUESTS:
        assert answers[path].status_code == status, (path, answers[path].text)
        assert says in answers[path].text, path
        assert answers[path].headers["content-type"].startswith("text/html"), path


def test_an_answer_that_does_not_fit_its_schema_shows_the_form_again_with_the_problem(
    web: TestClient, store: Store, clock: FakeClock, client: Client
) -> None:
    run_id = client.start("ui.ask")
    [inquiry] = client.get(run_id).inquiries
    _log_in(web, issue_token(store, "ops", Role.OPERATOR, clock()))
    csrf = _csrf(web)
    path = f"/ui/runs/{run_id}/inquiries/{inquiry.id}"
    typo = web.post(path, data={"csrf": csrf, "f.approved": "true", "f.replicas": "three"})
    assert typo.status_code == 422
    assert "&#39;replicas&#39;: &#39;three&#39; is not a whole number" in typo.text
    missing = web.post(path, data={"csrf": csrf, "f.approved": "true"})
    assert missing.status_code == 422
    assert "replicas" in missing.text
    assert 'role="alert"' in missing.text
    bad_json = web.post(path, data={"csrf": csrf, "mode": JSON_FIELD, JSON_FIELD: "{nope"})
    assert bad_json.status_code == 422
    assert "not valid JSON (line 1" in bad_json.text
    assert client.get(run_id).inquiries[0].status.value == "pending"
    ok = web.post(path, data={"csrf": csrf, "f.approved": "true", "f.replicas": "2"})
    assert ok.status_code == 303


def test_assets_have_their_types_and_cache_headers(web: TestClient) -> None:
    for name, media in (
        ("ui.css", "text/css"),
        ("ui.js", "text/javascript"),
        ("icon.svg", "image/svg+xml"),
    ):
        version = asset(name).version
        fresh = web.get(f"/ui/static/{name}?v={version}")
        assert fresh.headers["content-type"].startswith(media)
        assert fresh.headers["cache-control"] == "public, max-age=31536000, immutable"
        unversioned = web.get(f"/ui/static/{name}")
        assert unversioned.headers["cache-control"] == "no-cache"
        again = web.get(
            f"/ui/static/{name}", headers={"If-None-Match": unversioned.headers["etag"]}
        )
        assert again.status_code == 304


def test_the_layout_puts_every_task_after_those_before_it_and_draws_loops_as_back_edges() -> None:
    graph = {
        "nodes": [
            {"name": n, "start": n == "a"} for n in ("a", "b", "c", "d", "group", "g1", "g2")
        ],
        "edges": [
            {"source": "a", "target": "b", "condition": "{{ succeeded() }}", "publishes": []},
            {"source": "a", "target": "c", "condition": None, "publishes": ["x"]},
            {"source": "b", "target": "d", "condition": None, "publishes": []},
            {"source": "c", "target": "d", "condition": None, "publishes": []},
            {"source": "d", "target": "a", "condition": "{{ failed() }}", "publishes": []},
            {"source": "d", "target": "group", "condition": None, "publishes": []},
        ],
        "parallel_groups": [{"name": "group", "tasks": ["g1", "g2"], "entries": ["g1", "g2"]}],
    }
    layout = lay_out(graph)
    layer = {node.name: node.layer for node in layout.nodes}
    assert layer == {"a": 0, "b": 1, "c": 1, "d": 2, "group": 3, "g1": 4, "g2": 4}
    back = [(e.source, e.target) for e in layout.edges if e.back]
    assert back == [("d", "a")]
    assert [e.label for e in layout.edges if e.source == "a" and e.target == "b"] == ["succeeded()"]
    assert sum(e.contains for e in layout.edges) == 2
    boxes = [(n.x, n.y) for n in layout.nodes]
    assert len(set(boxes)) == len(boxes)
    assert all(
        x + NODE_WIDTH <= layout.width and y + NODE_HEIGHT <= layout.height for x, y in boxes
    )


def test_forms_are_built_from_simple_object_schemas_only() -> None:
    schema = {
        "type": "object",
        "properties": {
            "ok": {"type": "boolean"},
            "n": {"type": "integer", "minimum": 1},
            "ratio": {"type": "number"},
            "name": {"type": "string", "title": "Your name"},
            "tier": {"enum": ["gold", 2, None]},
        },
        "required": ["n"],
    }
    fields = form_fields(schema)
    assert fields is not None
    assert [(f.name, f.kind, f.required) for f in fields] == [
        ("ok", "checkbox", False),
        ("n", "integer", True),
        ("ratio", "number", False),
        ("name", "text", False),
        ("tier", "select", False),
    ]
    value = form_value(fields, {"f.n": "4", "f.ratio": "0.5", "f.name": "", "f.tier": "1"})
    assert value == {"ok": False, "n": 4, "ratio": 0.5, "tier": 2}
    with pytest.raises(ParameterError, match="'ratio': 'x' is not a number"):
        form_value(fields, {"f.ratio": "x"})
    with pytest.raises(ParameterError, match="not one of the choices"):
        form_value(fields, {"f.tier": "9"})
    nested = {"type": "object", "properties": {"a": {"type": "object"}}}
    assert form_fields(nested) is None
    assert form_fields({"type": "array"}) is None
    assert form_value(None, {JSON_FIELD: '{"a": [1]}'}) == {"a": [1]}
