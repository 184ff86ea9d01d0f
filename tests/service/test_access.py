"""Authenticating API tokens, and issuing and revoking them with their audit entries, on
SQLite and PostgreSQL stores."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest

from treadle.common.access import AuditOutcome, IssuedToken, Principal, Role
from treadle.common.errors import ConflictError, Unauthenticated
from treadle.scheduler.service.access import (
    LAST_USED_PRECISION,
    authenticate,
    issue,
    revoke,
)
from treadle.scheduler.store import AuditRecord, Store, TokenEntry

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
ADMIN = Principal(name="cli:ada", role=Role.ADMIN, workspace="default")
REFUSED = "invalid, expired or revoked token"


@pytest.fixture(params=["sqlite", "postgresql"])
def store(
    request: pytest.FixtureRequest, migrated_database_url: Callable[[str], str]
) -> Iterator[Store]:
    opened = Store.open(migrated_database_url(request.param))
    yield opened
    opened.close()


def issued(
    store: Store,
    name: str = "ci",
    *,
    role: Role = Role.OPERATOR,
    workspace: str = "team",
    expires_at: datetime | None = None,
) -> IssuedToken:
    with store.unit_of_work() as uow:
        return issue(
            uow,
            name=name,
            role=role,
            workspace=workspace,
            expires_at=expires_at,
            created_by=ADMIN,
            now=T0,
        )


def login(store: Store, plaintext: str, now: datetime = T0) -> Principal:
    with store.unit_of_work() as uow:
        return authenticate(uow, plaintext, now)


def stored_token(store: Store, token_id: str) -> TokenEntry:
    with store.snapshot() as uow:
        found = uow.token_by_id(token_id)
    assert found is not None
    return found


def audit(store: Store) -> list[AuditRecord]:
    with store.snapshot() as uow:
        return uow.list_audit(workspace=None)


def refused(store: Store, plaintext: str, now: datetime = T0) -> str:
    """The message a refused token gets; it must never repeat the token."""
    with pytest.raises(Unauthenticated) as caught:
        login(store, plaintext, now)
    message = str(caught.value)
    assert plaintext not in message or not plaintext
    return message


def test_a_good_token_stands_for_its_principal_and_its_use_is_noted(store: Store) -> None:
    token = issued(store)
    principal = login(store, token.plaintext, T0 + timedelta(minutes=5))
    assert principal == Principal(
        name="ci", role=Role.OPERATOR, workspace="team", token_id=token.token_id
    )
    assert principal.actor == "token:ci"
    assert stored_token(store, token.token_id).last_used_at == T0 + timedelta(minutes=5)

    # within the precision the row is not written again; after it, it is
    login(store, token.plaintext, T0 + timedelta(minutes=5) + LAST_USED_PRECISION / 2)
    assert stored_token(store, token.token_id).last_used_at == T0 + timedelta(minutes=5)
    later = T0 + timedelta(minutes=5) + LAST_USED_PRECISION
    login(store, token.plaintext, later)
    assert stored_token(store, token.token_id).last_used_at == later


def test_every_bad_token_is_refused_with_the_same_message(store: Store) -> None:
    token = issued(store)
    prefix, token_id, secret = token.plaintext.split("_", 2)
    flipped = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    cases = {
        "wrong secret": f"{prefix}_{token_id}_{flipped}",
        "unknown id": f"{prefix}_{'0' * 12}_{secret}",
        "malformed": "not-a-token",
        "empty": "",
        "bearer prefix left on": f"Bearer {token.plaintext}",
        "truncated": token.plaintext[:-1],
    }
    for case, plaintext in cases.items():
        assert refused(store, plaintext) == REFUSED, case
    assert stored_token(store, token.token_id).last_used_at is None  # none of them counted


def test_a_revoked_token_is_refused(store: Store) -> None:
    token = issued(store)
    login(store, token.plaintext)
    with store.unit_of_work() as uow:
        assert revoke(uow, token.token_id, by=ADMIN, now=T0 + timedelta(hours=1)) is True
    assert refused(store, token.plaintext, T0 + timedelta(hours=2)) == REFUSED


def test_a_token_is_refused_from_its_expiry_on(store: Store) -> None:
    expiry = T0 + timedelta(days=1)
    token = issued(store, expires_at=expiry)
    assert login(store, token.plaintext, expiry - timedelta(seconds=1)).name == "ci"
    assert refused(store, token.plaintext, expiry) == REFUSED
    assert refused(store, token.plaintext, expiry + timedelta(days=1)) == REFUSED


def test_issuing_stores_only_the_hash_and_audits_in_the_same_transaction(store: Store) -> None:
    token = issued(store, "deploy", role=Role.ADMIN, expires_at=T0 + timedelta(days=30))
    entry = stored_token(store, token.token_id)
    assert entry.token_hash == token.token_hash
    assert token.plaintext not in repr(entry)
    assert (entry.created_by, entry.role, entry.workspace) == ("cli:ada", Role.ADMIN, "team")
    (created,) = audit(store)
    assert (created.actor, created.workspace, created.action, created.target) == (
        "cli:ada",
        "team",
        "token.create",
        token.token_id,
    )
    assert created.outcome is AuditOutcome.OK
    assert created.details == {
        "name": "deploy",
        "role": "admin",
        "expires_at": "2024-05-31T12:00:00Z",
    }

    # a transaction that fails later stores neither the token nor its audit entry
    lost: list[IssuedToken] = []

    def issue_then_fail() -> None:
        with store.unit_of_work() as uow:
            lost.append(
                issue(
                    uow,
                    name="lost",
                    role=Role.VIEWER,
                    workspace="team",
                    expires_at=None,
                    created_by=ADMIN,
                    now=T0,
                )
            )
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        issue_then_fail()
    assert len(audit(store)) == 1
    with store.snapshot() as uow:
        assert uow.token_by_id(lost[0].token_id) is None


def test_issuing_refuses_bad_requests_and_changes_nothing(store: Store) -> None:
    issued(store, "ci")
    with pytest.raises(ConflictError, match="already has a token named 'ci'"):
        issued(store, "ci")
    with pytest.raises(ValueError, match="not in the future"):
        issued(store, "late", expires_at=T0)
    with pytest.raises(ValueError, match="needs a name"):
        issued(store, "  ")
    with store.snapshot() as uow:
        assert [t.name for t in uow.list_tokens()] == ["ci"]
    assert [r.action for r in audit(store)] == ["token.create"]


def test_revoking_is_audited_once_and_unknown_ids_change_nothing(store: Store) -> None:
    token = issued(store)
    operator = Principal(name="ops", role=Role.ADMIN, workspace="team", token_id="a" * 12)
    with store.unit_of_work() as uow:
        assert revoke(uow, token.token_id, by=operator, now=T0 + timedelta(hours=1)) is True
        assert revoke(uow, token.token_id, by=operator, now=T0 + timedelta(hours=2)) is False
        assert revoke(uow, "0" * 12, by=operator, now=T0) is False
    newest, _created = audit(store)
    assert (newest.actor, newest.workspace, newest.action, newest.target) == (
        "token:ops",
        "team",
        "token.revoke",
        token.token_id,
    )
    assert newest.at == T0 + timedelta(hours=1)
    assert newest.details == {"name": "ci"}
    assert stored_token(store, token.token_id).revoked_at == T0 + timedelta(hours=1)
