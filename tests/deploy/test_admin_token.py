"""The deployment's first admin token: ``treadle tokens create --from-env VARIABLE`` stores a
token made beforehand (docker-compose.yml's ``admin-token`` step), prints nothing secret,
does nothing the second time, and refuses another text under the same name, a malformed
token or an unset variable, naming the variable and never its value."""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path

import pytest

from treadle.common.access import Role
from treadle.common.errors import Unauthenticated
from treadle.scheduler.service.access import authenticate
from treadle.scheduler.store import Store
from treadle.testing.cli import CliResult, TreadleCli
from treadle.testing.processes import treadle_environment

CREATE = ("tokens", "create", "--name", "admin", "--role", "admin", "--from-env", "ADMIN_TOKEN")


def made_token() -> str:
    """A token as docs/deployment.md makes one with openssl."""
    return f"trd_{secrets.token_hex(6)}_{secrets.token_urlsafe(32)}"


class Deployment:
    def __init__(self, tmp_path: Path) -> None:
        self.database = f"sqlite:///{tmp_path / 'treadle.db'}"
        self.tmp_path = tmp_path

    def __call__(self, *args: str, admin_token: str | None = None) -> CliResult:
        env = treadle_environment(database_url=self.database)
        if admin_token is not None:
            env["ADMIN_TOKEN"] = admin_token
        return TreadleCli(self.tmp_path, env, in_process=True)(*args)

    def login(self, plaintext: str) -> tuple[str, Role]:
        with Store.open(self.database) as store, store.unit_of_work() as uow:
            principal = authenticate(uow, plaintext, datetime.now(UTC))
        return principal.name, principal.role


@pytest.fixture
def deployment(tmp_path: Path) -> Deployment:
    return Deployment(tmp_path)


def test_the_token_from_the_environment_is_created_once_and_works(deployment: Deployment) -> None:
    token = made_token()
    created = deployment(*CREATE, admin_token=token)
    assert created.code == 0, created
    assert created.stdout == ""  # its text is the operator's already: never printed
    assert token not in created.stderr
    assert created.stderr.startswith("created token ")
    assert "'admin' (role admin, workspace default, does not expire) from ADMIN_TOKEN" in (
        created.stderr
    )
    assert deployment.login(token) == ("admin", Role.ADMIN)
    again = deployment(*CREATE, admin_token=token)
    assert again.code == 0, again
    assert again.stderr.strip().endswith("already holds that text; nothing changed")
    listed = deployment("tokens", "list", "--json").json()
    assert [(t["name"], t["status"]) for t in listed] == [("admin", "active")]


def test_another_text_under_the_same_name_is_refused_until_the_old_token_is_revoked(
    deployment: Deployment,
) -> None:
    first, second = made_token(), made_token()
    assert deployment(*CREATE, admin_token=first).code == 0
    refused = deployment(*CREATE, admin_token=second)
    assert refused.code == 2, refused
    token_id = first.split("_")[1]
    assert refused.stderr.strip() == (
        "error: a token named 'admin' already exists in workspace default with another text: "
        f"revoke it first (treadle tokens revoke {token_id})"
    )
    with pytest.raises(Unauthenticated):
        deployment.login(second)
    assert deployment("tokens", "revoke", token_id).code == 0
    assert deployment(*CREATE, admin_token=second).code == 0
    assert deployment.login(second) == ("admin", Role.ADMIN)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (None, "error: --from-env ADMIN_TOKEN: the variable is not set (or empty)"),
        ("", "error: --from-env ADMIN_TOKEN: the variable is not set (or empty)"),
        (
            "hunter2-not-a-token",
            "error: --from-env ADMIN_TOKEN: not a Treadle token: expected trd_<12 hex digits>_"
            "<43 characters of URL-safe base64> (docs/deployment.md says how to make one)",
        ),
    ],
)
def test_an_unset_or_malformed_token_changes_nothing_and_is_never_repeated(
    deployment: Deployment, value: str | None, message: str
) -> None:
    refused = deployment(*CREATE, admin_token=value)
    assert refused.code == 2, refused
    assert refused.stderr.strip() == message
    assert deployment("tokens", "list", "--json").json() == []
