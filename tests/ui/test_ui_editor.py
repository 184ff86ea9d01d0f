"""The YAML editor without a browser: validate, publish, and what is refused.

In-process, as ``test_ui_http``: FastAPI's ``TestClient`` on ``create_app`` over a SQLite
database of the test's own. The forms are posted as a browser without its script posts
them; what they changed is read back through the JSON API (versions, the audit log).
"""

from __future__ import annotations

import html
import re
import textwrap
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.api.conftest import FakeClock, issue_token
from tests.ui.conftest import PACKS

from treadle.client import Client
from treadle.common.access import Role
from treadle.common.loader import load_packs, load_workflow_text
from treadle.scheduler.store import Store

#: Published through the JSON API by the admin: the workspace's own workflow.
EDITED = """\
ref: ui.edited
parameters:
  name: {type: string, default: world}
tasks:
  - name: greet
    action: core.echo
    input: {message: "hello {{ parameters.name }}"}
"""

#: Three errors: an unknown field (so the action's required input is missing), a
#: transition to no task.
BROKEN = """\
ref: ui.edited
tasks:
  - name: greet
    action: core.echo
    inptu: {message: hi}
    next:
      - do: [nowhere]
"""

#: Published from the server (``Client.register``): shared by every workspace.
SHARED = """\
ref: ui.shared
tasks:
  - name: only
    action: core.noop
"""


@pytest.fixture
def tokens(store: Store, clock: FakeClock) -> dict[Role, str]:
    return {role: issue_token(store, f"{role.value}-1", role, clock()) for role in Role}


@pytest.fixture
def edited(web: TestClient, tokens: dict[Role, str]) -> None:
    """``ui.edited`` v1, published through the JSON API (the workspace owns it)."""
    answer = web.put(
        "/api/v1/workflows/ui.edited",
        content=EDITED,
        headers={**_bearer(tokens, Role.ADMIN), "Content-Type": "application/yaml"},
    )
    assert answer.status_code == 201, answer.text


def _bearer(tokens: dict[Role, str], role: Role) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens[role]}"}


def _log_in(web: TestClient, token: str) -> None:
    form = web.get("/ui/login")
    guard = re.search(r'name="guard" value="([^"]+)"', form.text)
    assert guard is not None
    done = web.post("/ui/login", data={"guard": guard.group(1), "token": token, "next": "/"})
    assert done.status_code == 303


def _csrf(web: TestClient, path: str = "/ui/runs") -> str:
    found = re.search(r'name="csrf-token" content="([^"]+)"', web.get(path).text)
    assert found is not None
    return found.group(1)


def _textarea(page: str) -> str:
    """The text the editor's text area holds (as a browser reads it: the newline right
    after the tag is not part of it)."""
    found = re.search(r'<textarea id="definition-yaml"[^>]*>\n(.*?)</textarea>', page, re.S)
    assert found is not None, page
    return html.unescape(found.group(1))


def _problems(page: str) -> list[tuple[str, str, str]]:
    """Each listed problem: (line, column, the link's and message's text)."""
    listed = re.findall(
        r'<a href="#definition-yaml" data-line="(\d+)" data-column="(\d+)">(.*?)</li>', page, re.S
    )
    return [
        (line, column, " ".join(html.unescape(re.sub(r"<[^>]+>", "", text)).split()))
        for line, column, text in listed
    ]


def _marked_lines(page: str) -> dict[int, str]:
    """The gutter's marked line numbers and their marks."""
    gutter = page.split('<pre class="gutter" aria-hidden="true">', 1)[1].split("</pre>", 1)[0]
    marks = re.findall(r'<span class="mark-(\w+)">(.)\s*(\d+)</span>', gutter)
    return {int(number): f"{kind} {symbol}" for kind, symbol, number in marks}


def _versions(web: TestClient, tokens: dict[Role, str], ref: str) -> list[dict[str, Any]]:
    answer = web.get(f"/api/v1/workflows/{ref}/versions", headers=_bearer(tokens, Role.VIEWER))
    assert answer.status_code == 200, answer.text
    versions: list[dict[str, Any]] = answer.json()["versions"]
    return versions


def test_validate_shows_each_problem_at_its_line_and_stores_nothing(
    web: TestClient, tokens: dict[Role, str], edited: None
) -> None:
    _log_in(web, tokens[Role.ADMIN])
    page = web.get("/ui/workflows/ui.edited")
    assert 'id="editor-title">Edit the definition</h2>' in page.text
    answer = web.post(
        "/ui/workflows/ui.edited/definition",
        data={"csrf": _csrf(web), "action": "validate", "yaml": BROKEN},
    )
    assert answer.status_code == 422
    assert "3 problems: nothing was stored" in answer.text
    assert _problems(answer.text) == [
        (
            "4",
            "5",
            "Error at line 4, column 5, tasks[0].action: task 'greet' does not give the "
            "required input 'message' of 'core.echo'",
        ),
        (
            "5",
            "5",
            "Error at line 5, column 5, tasks[0].inptu: unknown field 'inptu' in task "
            "'greet' (did you mean 'input'?)",
        ),
        (
            "7",
            "14",
            "Error at line 7, column 14, tasks[0].next[0].do[0]: task 'greet' transitions "
            "to unknown task 'nowhere'",
        ),
    ]
    assert _marked_lines(answer.text) == {4: "error ✗", 5: "error ✗", 7: "error ✗"}
    assert _textarea(answer.text) == BROKEN  # the text as sent, to be fixed
    assert [v["version"] for v in _versions(web, tokens, "ui.edited")] == [1]


def test_a_valid_definition_is_said_valid_with_its_warnings(
    web: TestClient, tokens: dict[Role, str], edited: None
) -> None:
    _log_in(web, tokens[Role.ADMIN])
    text = EDITED.replace("core.echo", "acme.deploy").replace(
        '{message: "hello {{ parameters.name }}"}', "{target: prod}"
    )
    answer = web.post(
        "/ui/workflows/ui.edited/definition",
        data={"csrf": _csrf(web), "action": "validate", "yaml": text},
    )
    assert answer.status_code == 200, answer.text
    assert "Valid: <code>ui.edited</code> can be published, with 1 warning." in answer.text
    [(line, column, said)] = _problems(answer.text)
    assert (line, column) == ("6", "5")
    assert said.startswith("Warning at line 6, column 5, tasks[0].action: ")
    assert "acme.deploy" in said
    assert _marked_lines(answer.text) == {6: "warning !"}
    assert [v["version"] for v in _versions(web, tokens, "ui.edited")] == [1]


def test_publish_creates_the_next_version_and_links_its_diff(
    web: TestClient, tokens: dict[Role, str], edited: None
) -> None:
    _log_in(web, tokens[Role.ADMIN])
    shown = _textarea(web.get("/ui/workflows/ui.edited").text)
    assert "ref: ui.edited" in shown
    assert shown.startswith("# ui.edited, from version 1\n")
    # the text the editor starts from is the definition itself: unchanged, it keeps v1
    same = web.post(
        "/ui/workflows/ui.edited/definition",
        data={"csrf": _csrf(web), "action": "publish", "yaml": shown.replace("\n", "\r\n")},
    )
    assert (same.status_code, same.headers["location"]) == (
        303,
        "/ui/workflows/ui.edited?unchanged=1#notice",
    )
    assert "it keeps version 1" in web.get(same.headers["location"]).text

    changed = shown.replace("hello", "good morning")
    assert changed != shown
    answer = web.post(
        "/ui/workflows/ui.edited/definition",
        data={"csrf": _csrf(web), "action": "publish", "yaml": changed},
    )
    assert (answer.status_code, answer.headers["location"]) == (
        303,
        "/ui/workflows/ui.edited?published=2#notice",
    )
    page = web.get(answer.headers["location"]).text
    assert "Published version 2." in page
    assert '<a href="/ui/workflows/ui.edited/diff?to=2">What changed since version 1</a>' in page
    diff = web.get("/ui/workflows/ui.edited/diff?to=2").text
    assert "good morning" in diff
    versions = _versions(web, tokens, "ui.edited")
    assert [(v["version"], v["author"]) for v in versions] == [
        (1, "token:admin-1"),
        (2, "token:admin-1"),
    ]
    audit = web.get(
        "/api/v1/audit?action=workflow.publish", headers=_bearer(tokens, Role.ADMIN)
    ).json()["items"]
    assert [(e["actor"], e["target"], e["outcome"]) for e in audit][:1] == [
        ("token:admin-1", "ui.edited", "ok")
    ]


def test_publishing_an_invalid_definition_changes_nothing_and_shows_the_problems(
    web: TestClient, tokens: dict[Role, str], edited: None
) -> None:
    _log_in(web, tokens[Role.ADMIN])
    answer = web.post(
        "/ui/workflows/ui.edited/definition",
        data={"csrf": _csrf(web), "action": "publish", "yaml": BROKEN},
    )
    assert answer.status_code == 422
    assert "3 problems: nothing was stored" in answer.text
    assert [line for line, _column, _said in _problems(answer.text)] == ["4", "5", "7"]
    assert _textarea(answer.text) == BROKEN
    assert [v["version"] for v in _versions(web, tokens, "ui.edited")] == [1]
    not_yaml = web.post(
        "/ui/workflows/ui.edited/definition",
        data={"csrf": _csrf(web), "action": "publish", "yaml": "ref: ui.edited\ntasks: [\n"},
    )
    assert not_yaml.status_code == 422
    [(line, _column, said)] = _problems(not_yaml.text)
    assert line == "3"
    assert said.startswith("Error at line 3, column 1: YAML syntax error")  # no field
    other_ref = web.post(
        "/ui/workflows/ui.edited/definition",
        data={"csrf": _csrf(web), "action": "publish", "yaml": EDITED.replace("ui.edited", "ui.x")},
    )
    assert other_ref.status_code == 422
    assert "the definition&#39;s ref &#39;ui.x&#39; is not &#39;ui.edited&#39;" in other_ref.text
    assert [v["version"] for v in _versions(web, tokens, "ui.edited")] == [1]


def test_a_new_workflow_is_validated_and_published_from_the_list(
    web: TestClient, tokens: dict[Role, str]
) -> None:
    _log_in(web, tokens[Role.ADMIN])
    assert '<a href="/ui/workflows/new">New workflow</a>' in web.get("/ui/workflows").text
    starter = _textarea(web.get("/ui/workflows/new").text)
    valid = web.post(
        "/ui/workflows/new", data={"csrf": _csrf(web), "action": "validate", "yaml": starter}
    )
    assert valid.status_code == 200
    assert "Valid: <code>mine.hello</code> can be published." in valid.text
    text = starter.replace("mine.hello", "ui.fresh")
    published = web.post(
        "/ui/workflows/new", data={"csrf": _csrf(web), "action": "publish", "yaml": text}
    )
    assert (published.status_code, published.headers["location"]) == (
        303,
        "/ui/workflows/ui.fresh?published=1#notice",
    )
    page = web.get(published.headers["location"]).text
    assert "Published version 1." in page
    assert "What changed" not in page  # nothing before it
    assert [v["version"] for v in _versions(web, tokens, "ui.fresh")] == [1]


def test_a_viewer_or_operator_sees_no_editor_and_a_forged_post_is_403(
    web: TestClient, tokens: dict[Role, str], edited: None
) -> None:
    changed = EDITED.replace("hello", "bye")
    for role in (Role.VIEWER, Role.OPERATOR):
        _log_in(web, tokens[role])
        page = web.get("/ui/workflows/ui.edited").text
        assert "<textarea" not in page
        assert 'id="editor"' not in page
        assert 'value="publish"' not in page
        assert "New workflow" not in web.get("/ui/workflows").text
        assert web.get("/ui/workflows/new").status_code == 403
        csrf = _csrf(web)
        for path in ("/ui/workflows/ui.edited/definition", "/ui/workflows/new"):
            for action in ("publish", "validate"):
                forged = web.post(path, data={"csrf": csrf, "action": action, "yaml": changed})
                assert forged.status_code == 403, (role, path, action)
                assert "needs the admin role" in forged.text
    assert [v["version"] for v in _versions(web, tokens, "ui.edited")] == [1]


def test_without_the_csrf_token_nothing_is_published(
    web: TestClient, tokens: dict[Role, str], edited: None
) -> None:
    _log_in(web, tokens[Role.ADMIN])
    changed = EDITED.replace("hello", "bye")
    for data in (
        {"action": "publish", "yaml": changed},
        {"csrf": "not-the-token", "action": "publish", "yaml": changed},
    ):
        refused = web.post("/ui/workflows/ui.edited/definition", data=data)
        assert refused.status_code == 403
        assert "CSRF" in refused.text
    new = web.post("/ui/workflows/new", data={"action": "publish", "yaml": changed})
    assert new.status_code == 403
    assert [v["version"] for v in _versions(web, tokens, "ui.edited")] == [1]


def test_a_shared_workflow_can_be_validated_but_not_published_here(
    web: TestClient, store: Store, tokens: dict[Role, str]
) -> None:
    with Client(str(store.engine.url)) as client:
        client.register(
            load_workflow_text(textwrap.dedent(SHARED), "<ui>"), catalog=load_packs([PACKS])
        )
    _log_in(web, tokens[Role.ADMIN])
    page = web.get("/ui/workflows/ui.shared").text
    assert "Publishing here is refused" in page
    assert "is shared by every workspace" in page
    assert 'value="publish"' not in page
    text = _textarea(page)
    valid = web.post(
        "/ui/workflows/ui.shared/definition",
        data={"csrf": _csrf(web), "action": "validate", "yaml": text},
    )
    assert valid.status_code == 200
    forged = web.post(
        "/ui/workflows/ui.shared/definition",
        data={"csrf": _csrf(web), "action": "publish", "yaml": text + "description: mine\n"},
    )
    assert forged.status_code == 409
    assert "Not published: workflow &#39;ui.shared&#39; is shared" in forged.text
    assert _textarea(forged.text) == text + "description: mine\n"
    assert [v["version"] for v in _versions(web, tokens, "ui.shared")] == [1]


def test_a_button_the_editor_does_not_have_is_422(
    web: TestClient, tokens: dict[Role, str], edited: None
) -> None:
    _log_in(web, tokens[Role.ADMIN])
    answer = web.post(
        "/ui/workflows/ui.edited/definition",
        data={"csrf": _csrf(web), "action": "delete", "yaml": EDITED},
    )
    assert answer.status_code == 422
    assert "must be &#39;validate&#39; or &#39;publish&#39;" in answer.text
    assert [v["version"] for v in _versions(web, tokens, "ui.edited")] == [1]
