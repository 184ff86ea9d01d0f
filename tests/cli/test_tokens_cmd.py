"""``treadle tokens create|list|revoke`` and ``treadle audit list`` as a user runs them: the
token is printed once and works, nothing shows or stores it again, bad input changes
nothing, and every change is in the audit log under ``cli:<login>``."""

from __future__ import annotations

import hashlib
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from treadle.common.access import Role
from treadle.common.errors import Unauthenticated
from treadle.common.settings import os_login
from treadle.scheduler.service.access import authenticate
from treadle.scheduler.store import Store

NOT_SHOWN_AGAIN = "it cannot be shown again"


def login(treadle: Any, plaintext: str) -> Any:
    store = Store.open(f"sqlite:///{treadle.database}")
    try:
        with store.unit_of_work() as uow:
            return authenticate(uow, plaintext, datetime.now(UTC))
    finally:
        store.close()


def test_a_created_token_is_printed_once_and_works(treadle: Any) -> None:
    created = treadle("tokens", "create", "--name", "ci", "--role", "operator", code=0)
    plaintext = created.stdout.strip()
    assert plaintext.startswith("trd_")
    assert len(created.stdout.splitlines()) == 1  # only the token on stdout: scripts take it
    assert NOT_SHOWN_AGAIN in created.stderr
    assert "role operator, workspace default, does not expire" in created.stderr

    principal = login(treadle, plaintext)
    assert (principal.name, principal.role, principal.workspace) == ("ci", Role.OPERATOR, "default")

    listed = treadle("tokens", "list", code=0)
    header, row = listed.stdout.splitlines()
    assert header.split() == [
        "id",
        "name",
        "role",
        "workspace",
        "status",
        "created",
        "expires",
        "last",
        "used",
    ]
    token_id = principal.token_id
    assert row.split()[:5] == [token_id, "ci", "operator", "default", "active"]
    assert row.split()[-2] == "never"  # no expiry
    token_hash = hashlib.sha256(plaintext.encode()).hexdigest()
    as_json = treadle("tokens", "list", "--json", code=0)
    for shown in (listed.output, as_json.output):
        assert plaintext not in shown
        assert plaintext.split("_", 2)[2] not in shown  # not even the secret part
        assert token_hash not in shown
    (document,) = as_json.json()
    assert document["id"] == token_id
    assert document["created_by"] == f"cli:{os_login()}"
    assert document["last_used_at"] is not None  # the login above was noted
    assert document["status"] == "active"


def test_the_database_holds_the_sha256_and_never_the_token(treadle: Any) -> None:
    created = treadle("tokens", "create", "--name", "ci", "--role", "admin", "--json", code=0)
    document = created.json()
    plaintext = document["token"]
    assert (document["name"], document["role"], document["workspace"]) == ("ci", "admin", "default")
    assert NOT_SHOWN_AGAIN in created.stderr

    with sqlite3.connect(treadle.database) as connection:
        rows = connection.execute("SELECT id, token_hash FROM api_tokens").fetchall()
        every_value = [
            str(value)
            for table in ("api_tokens", "audit_log")
            for row in connection.execute(f"SELECT * FROM {table}").fetchall()
            for value in row
        ]
    assert rows == [(document["id"], hashlib.sha256(plaintext.encode()).hexdigest())]
    assert not [value for value in every_value if plaintext.split("_", 2)[2] in value]
    raw = b"".join(
        path.read_bytes() for path in treadle.database.parent.glob(treadle.database.name + "*")
    )
    assert plaintext.encode() not in raw  # not in the file, nor its write-ahead log


def test_revoking_stops_the_token_and_is_audited(treadle: Any) -> None:
    plaintext = treadle("tokens", "create", "--name", "ci", "--role", "viewer", code=0).stdout
    plaintext = plaintext.strip()
    token_id = login(treadle, plaintext).token_id

    revoked = treadle("tokens", "revoke", token_id, code=0)
    assert f"revoked token {token_id} ('ci', workspace default)" in revoked.stdout
    with pytest.raises(Unauthenticated, match="invalid, expired or revoked token"):
        login(treadle, plaintext)
    again = treadle("tokens", "revoke", token_id, code=0)
    assert "already revoked" in again.stderr
    (row,) = treadle("tokens", "list", "--json", code=0).json()
    assert row["status"] == "revoked"
    assert row["revoked_at"] is not None

    entries = treadle("audit", "list", "--json", code=0).json()
    actor = f"cli:{os_login()}"
    assert [(e["action"], e["target"], e["actor"], e["outcome"]) for e in entries] == [
        ("token.revoke", token_id, actor, "ok"),
        ("token.create", token_id, actor, "ok"),
    ]
    text = treadle("audit", "list", "--action", "token.create", code=0).stdout.splitlines()
    assert len(text) == 1
    assert f"{actor}  default  token.create  {token_id}  ok" in text[0]


def test_expiry_is_a_duration_or_an_iso_time(treadle: Any) -> None:
    before = datetime.now(UTC)
    in_a_day = treadle(
        "tokens", "create", "--name", "a", "--role", "viewer", "--expires", "1d", "--json", code=0
    ).json()
    expires = datetime.fromisoformat(in_a_day["expires_at"])
    assert before + timedelta(days=1) <= expires <= datetime.now(UTC) + timedelta(days=1)
    on_a_date = treadle(
        "tokens",
        "create",
        "--name",
        "b",
        "--role",
        "viewer",
        "--expires",
        "2999-01-31",
        "--json",
        code=0,
    ).json()
    assert on_a_date["expires_at"] == "2999-01-31T00:00:00Z"
    listed = {t["name"]: t["expires_at"] for t in treadle("tokens", "list", "--json").json()}
    assert listed == {"a": in_a_day["expires_at"], "b": "2999-01-31T00:00:00Z"}


def test_bad_input_is_explained_and_changes_nothing(treadle: Any) -> None:
    treadle("tokens", "create", "--name", "ci", "--role", "viewer", code=0)
    tokens_before = treadle("tokens", "list", "--json", code=0).json()
    audit_before = treadle("audit", "list", "--json", code=0).json()
    cases = {
        ("tokens", "create", "--name", "x", "--role", "root"): (
            "--role 'root' is not a role; one of viewer, operator, admin"
        ),
        ("tokens", "create", "--name", "x", "--role", "viewer", "--expires", "soon"): (
            "--expires 'soon': expected a duration such as 30d or 12h, or an ISO date"
        ),
        ("tokens", "create", "--name", "x", "--role", "viewer", "--expires", "30"): (
            "--expires '30': give a unit"
        ),
        ("tokens", "create", "--name", "x", "--role", "viewer", "--expires", "2001-01-01"): (
            "--expires '2001-01-01': that is not in the future"
        ),
        ("tokens", "create", "--name", "ci", "--role", "admin"): (
            "workspace 'default' already has a token named 'ci' that is not revoked"
        ),
        ("tokens", "revoke", "0123456789ab"): "no token '0123456789ab'",
        ("audit", "list", "--since", "yesterday"): "--since 'yesterday': expected an ISO time",
    }
    for args, message in cases.items():
        result = treadle(*args, code=2)
        assert f"error: {message}" in result.stderr, result
        assert "trd_" not in result.output
    assert treadle("tokens", "list", "--json", code=0).json() == tokens_before
    assert treadle("audit", "list", "--json", code=0).json() == audit_before


def test_audit_list_pages_and_filters(treadle: Any) -> None:
    for name in ("a", "b", "c"):
        treadle("tokens", "create", "--name", name, "--role", "viewer", code=0)
    treadle("tokens", "create", "--name", "t", "--role", "viewer", "--workspace", "team", code=0)

    first = treadle("audit", "list", "--limit", "3", "--json", code=0)
    page = first.json()
    assert [e["details"]["name"] for e in page] == ["t", "c", "b"]
    cursor = first.stderr.strip().splitlines()[-1].removeprefix("next page: --cursor ")
    assert cursor == str(page[-1]["id"])
    last = treadle("audit", "list", "--limit", "3", "--cursor", cursor, "--json", code=0)
    assert [e["details"]["name"] for e in last.json()] == ["a"]
    assert "next page" not in last.stderr

    team = treadle("audit", "list", "--workspace", "team", "--json", code=0).json()
    assert [e["details"]["name"] for e in team] == ["t"]
    recent = treadle("audit", "list", "--since", "1h", "--json", code=0).json()
    assert len(recent) == 4
    future = treadle("audit", "list", "--since", "2999-01-01", code=0)
    assert future.stdout == ""
    assert "no audit entries match" in future.stderr
    nobody = treadle("audit", "list", "--actor", "token:nobody", "--json", code=0).json()
    assert nobody == []
