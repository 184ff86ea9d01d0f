"""``treadle workflows register|versions|diff`` as a user runs them, and version pinning.

Registering unchanged content keeps its version; changed content publishes the next one,
with its hash, author and time. ``diff`` prints a unified diff of two versions. A run keeps
the version it started on when a newer one is published while it is waiting: what is left
of it follows the old graph, and runs started afterwards follow the new one.
"""

from __future__ import annotations

import getpass
import re
from datetime import datetime
from pathlib import Path
from typing import Any

Cli = Any  # the ``treadle`` fixture (tests/cli/conftest.py)

FLOW = """\
ref: demo.flow
parameters:
  name: {type: string, default: you}
tasks:
  - name: greet
    action: core.echo
    input: {message: "hi {{ parameters.name }}"}
"""

HASH = re.compile(r"[0-9a-f]{64}")


def _published(treadle: Cli, text: str, name: str = "flow.yaml") -> str:
    """Write ``text`` to ``name`` and register it; returns the command's stdout."""
    path = treadle.write(name, text)
    return str(treadle("workflows", "register", path, code=0).stdout)


def _changes(diff: str) -> list[str]:
    """The lines a diff removes and adds, each as its sign and its text without indent."""
    lines = diff.splitlines()[2:]
    return [line[0] + line[1:].strip() for line in lines if line[:1] in "+-"]


def test_unchanged_content_keeps_its_version_and_changed_content_adds_the_next(
    treadle: Cli,
) -> None:
    assert _published(treadle, FLOW) == "demo.flow v1 (new)\n"
    assert _published(treadle, FLOW) == "demo.flow v1 (unchanged)\n"
    # Only what runs counts: comments and layout are not content.
    reformatted = "# the greeting\n" + FLOW.replace(
        "{type: string, default: you}", "\n    type: string\n    default: you"
    )
    assert _published(treadle, reformatted) == "demo.flow v1 (unchanged)\n"
    [only] = treadle("workflows", "versions", "demo.flow", "--json", code=0).json()
    assert only["version"] == 1

    assert _published(treadle, FLOW.replace("hi ", "hello ")) == "demo.flow v2 (new)\n"

    versions = treadle("workflows", "versions", "demo.flow", "--json", code=0).json()
    login = getpass.getuser()
    assert [(v["version"], v["author"], v["dialect"], v["runs"]) for v in versions] == [
        (1, login, "attune", 0),
        (2, login, "attune", 0),
    ]
    first, second = versions
    assert HASH.fullmatch(first["content_hash"])
    assert HASH.fullmatch(second["content_hash"])
    assert first["content_hash"] != second["content_hash"]
    published = [datetime.fromisoformat(v["created_at"]) for v in versions]
    assert published[0] <= published[1]

    table = treadle("workflows", "versions", "demo.flow", code=0).stdout.splitlines()
    assert table[0].split() == ["version", "hash", "author", "created_at", "runs"]
    assert [line.split() for line in table[1:]] == [
        ["v1", first["content_hash"][:12], login, first["created_at"], "0"],
        ["v2", second["content_hash"][:12], login, second["created_at"], "0"],
    ]


def test_diff_prints_a_unified_diff_of_two_versions(treadle: Cli) -> None:
    _published(treadle, FLOW)
    _published(treadle, FLOW.replace("hi ", "hello "))

    default = treadle("workflows", "diff", "demo.flow", code=0).stdout
    lines = default.splitlines()
    assert lines[:2] == ["--- demo.flow@v1", "+++ demo.flow@v2"]
    assert lines[2].startswith("@@ ")
    assert [line for line in lines[2:] if line[:1] in "+-"] == [
        "-    message: hi {{ parameters.name }}",
        "+    message: hello {{ parameters.name }}",
    ]
    assert treadle("workflows", "diff", "demo.flow", "1", "2", code=0).stdout == default
    assert treadle("workflows", "diff", "demo.flow", "1", code=0).stdout == default  # vs latest

    backwards = treadle("workflows", "diff", "demo.flow", "2", "1", code=0).stdout.splitlines()
    assert backwards[:2] == ["--- demo.flow@v2", "+++ demo.flow@v1"]
    assert [line for line in backwards[2:] if line[:1] in "+-"] == [
        "-    message: hello {{ parameters.name }}",
        "+    message: hi {{ parameters.name }}",
    ]
    assert treadle("workflows", "diff", "demo.flow", "2", "2", code=0).stdout == ""

    as_json = treadle("workflows", "diff", "demo.flow", "--json", code=0).stdout
    assert _changes(as_json) == [
        '-"message": "hi {{ parameters.name }}"',
        '+"message": "hello {{ parameters.name }}"',
    ]


def test_diff_shows_every_change_to_the_authors_data_whatever_its_keys(treadle: Cli) -> None:
    """Data whose keys look like the loader's bookkeeping (a trigger parameter ``path``),
    or a value that looks unset (``with_items: []``, which runs no item), is shown: two
    versions never diff as the same."""
    triggered = FLOW + (
        "trigger:\n"
        "  type: event\n"
        "  event_type: file.stored\n"
        "  parameters:\n"
        '    path: "{{ event.data.path }}"\n'
    )
    _published(treadle, triggered)
    renamed = triggered.replace("event.data.path", "event.data.key")
    assert _published(treadle, renamed) == "demo.flow v2 (new)\n"
    no_items = renamed.replace("action: core.echo", "action: core.echo\n    with_items: []")
    assert _published(treadle, no_items) == "demo.flow v3 (new)\n"

    assert _changes(treadle("workflows", "diff", "demo.flow", "1", "2", code=0).stdout) == [
        "-path: '{{ event.data.path }}'",
        "+path: '{{ event.data.key }}'",
    ]
    assert _changes(treadle("workflows", "diff", "demo.flow", "2", "3", code=0).stdout) == [
        "+with_items: []",
    ]


def test_unknown_workflows_and_versions_are_refused_with_exit_2(treadle: Cli) -> None:
    where = f"in SQLite file {treadle.database}"

    unknown = treadle("workflows", "versions", "demo.nope", code=2)
    assert unknown.stdout == ""
    assert unknown.stderr.startswith(
        f"error: workflow 'demo.nope' has no published version {where}"
    )
    assert "treadle workflows register FILE" in unknown.stderr
    assert treadle("workflows", "diff", "demo.nope", code=2).stderr == unknown.stderr

    _published(treadle, FLOW)
    alone = treadle("workflows", "diff", "demo.flow", code=2)
    assert alone.stderr == "error: workflow 'demo.flow' has only version 1; nothing to compare\n"
    _published(treadle, FLOW.replace("hi ", "hello "))
    missing = treadle("workflows", "diff", "demo.flow", "1", "3", code=2)
    assert missing.stdout == ""
    assert missing.stderr == "error: workflow 'demo.flow' has no version 3 (published: 1, 2)\n"
    assert treadle("workflows", "diff", "demo.flow", "one", code=2).stdout == ""


#: demo.pinned in two versions (tests/data/versions)
VERSIONS = Path(__file__).resolve().parents[1] / "data" / "versions"
PINNED_V1 = (VERSIONS / "pinned_v1.yaml").read_text(encoding="utf-8")
PINNED_V2 = (VERSIONS / "pinned_v2.yaml").read_text(encoding="utf-8")


def _answer(treadle: Cli, document: dict[str, Any]) -> dict[str, Any]:
    [asked] = document["inquiries"]
    answer = ("inquiry", "respond", asked["id"], "--data", '{"go": true}', "--json", "-q")
    return dict(treadle(*answer, code=0).json())


def test_a_run_keeps_its_version_when_a_new_one_is_published_while_it_waits(
    treadle: Cli,
) -> None:
    path = treadle.write("pinned.yaml", PINNED_V1)
    old = treadle("run", path, "--json", "-q", code=3).json()  # waits at the gate
    assert old["version"] == 1

    treadle.write("pinned.yaml", PINNED_V2)
    assert treadle("workflows", "register", path, code=0).stdout == "demo.pinned v2 (new)\n"
    assert treadle("runs", "show", old["id"], code=0).json()["version"] == 1

    finished = _answer(treadle, old)

    assert (finished["id"], finished["version"], finished["status"]) == (old["id"], 1, "succeeded")
    assert [t["name"] for t in finished["tasks"]] == ["first", "gate", "last"]
    assert finished["output"] == {"said": "v1 last"}

    new = treadle("run", path, "--json", "-q", code=3).json()
    assert new["version"] == 2
    finished_new = _answer(treadle, new)
    assert [t["name"] for t in finished_new["tasks"]] == ["first", "gate", "extra", "last"]
    assert finished_new["output"] == {"said": "v2 last"}
    versions = treadle("workflows", "versions", "demo.pinned", "--json", code=0).json()
    assert [(v["version"], v["runs"]) for v in versions] == [(1, 1), (2, 1)]
