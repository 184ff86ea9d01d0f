"""API tokens in the store, on SQLite and PostgreSQL: stored, found, listed, revoked, used;
a name is unique in its workspace among tokens not revoked, enforced by the database."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.exc import IntegrityError

from treadle.common.access import Role, issue_token
from treadle.common.errors import ConflictError
from treadle.scheduler.store import Store, TokenEntry
from treadle.scheduler.store.models import api_tokens

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)


def token(name: str, *, workspace: str = "default", role: Role = Role.VIEWER) -> TokenEntry:
    issued = issue_token()
    return TokenEntry(
        id=issued.token_id,
        name=name,
        role=role,
        workspace=workspace,
        token_hash=issued.token_hash,
        created_at=T0,
        created_by="cli:ada",
    )


def test_a_token_is_stored_and_read_back_as_it_was_given(store: Store) -> None:
    entry = replace(
        token("ci", role=Role.OPERATOR),
        expires_at=T0 + timedelta(days=30),
        last_used_at=T0 + timedelta(minutes=5),
    )
    with store.unit_of_work() as uow:
        uow.create_token(entry)
    with store.snapshot() as uow:
        found = uow.token_by_id(entry.id)
        missing = uow.token_by_id("000000000000")
    assert found == entry
    assert found is not None
    assert found.role is Role.OPERATOR
    assert found.expires_at is not None
    assert found.expires_at.utcoffset() == timedelta(0)
    assert missing is None


def test_tokens_are_listed_by_workspace_then_name(store: Store) -> None:
    made = [
        token("zeta"),
        token("alpha"),
        token("alpha", workspace="team-b"),
        token("ops", workspace="team-a", role=Role.ADMIN),
    ]
    with store.unit_of_work() as uow:
        for entry in made:
            uow.create_token(entry)
    with store.snapshot() as uow:
        every = uow.list_tokens()
        team_b = uow.list_tokens("team-b")
        nobody = uow.list_tokens("nobody")
    assert [(t.workspace, t.name) for t in every] == [
        ("default", "alpha"),
        ("default", "zeta"),
        ("team-a", "ops"),
        ("team-b", "alpha"),
    ]
    assert [t.id for t in team_b] == [made[2].id]
    assert nobody == []


def test_revoking_happens_once_and_keeps_the_first_time(store: Store) -> None:
    entry = token("ci")
    with store.unit_of_work() as uow:
        uow.create_token(entry)
    with store.unit_of_work() as uow:
        assert uow.revoke_token(entry.id, T0 + timedelta(hours=1)) is True
    with store.unit_of_work() as uow:
        assert uow.revoke_token(entry.id, T0 + timedelta(hours=2)) is False
        assert uow.revoke_token("000000000000", T0) is False
        found = uow.token_by_id(entry.id)
    assert found is not None
    assert found.revoked_at == T0 + timedelta(hours=1)
    assert [t.id for t in store_tokens(store)] == [entry.id]  # revoked tokens stay listed


def store_tokens(store: Store) -> list[TokenEntry]:
    with store.snapshot() as uow:
        return uow.list_tokens()


def test_use_is_noted_and_never_moves_back(store: Store) -> None:
    entry = token("ci")
    with store.unit_of_work() as uow:
        uow.create_token(entry)
        uow.token_used(entry.id, T0 + timedelta(minutes=10))
        uow.token_used(entry.id, T0 + timedelta(minutes=3))  # a slower, older request
    assert store_tokens(store)[0].last_used_at == T0 + timedelta(minutes=10)
    with store.unit_of_work() as uow:
        uow.token_used(entry.id, T0 + timedelta(minutes=11))
    assert store_tokens(store)[0].last_used_at == T0 + timedelta(minutes=11)


def test_a_live_name_is_unique_in_its_workspace_until_revoked(store: Store) -> None:
    first = token("deploy-bot")
    with store.unit_of_work() as uow:
        uow.create_token(first)
        uow.create_token(token("deploy-bot", workspace="other"))  # another workspace: fine
    with (
        pytest.raises(ConflictError, match="already has a token named 'deploy-bot'"),
        store.unit_of_work() as uow,
    ):
        uow.create_token(token("deploy-bot"))
    assert len(store_tokens(store)) == 2  # nothing was stored

    with store.unit_of_work() as uow:
        uow.revoke_token(first.id, T0)
    replacement = token("deploy-bot")
    with store.unit_of_work() as uow:
        uow.create_token(replacement)  # the name is free again
    names = [(t.workspace, t.name, t.revoked_at is None) for t in store_tokens(store)]
    assert sorted(names) == [
        ("default", "deploy-bot", False),
        ("default", "deploy-bot", True),
        ("other", "deploy-bot", True),
    ]


def test_the_database_itself_refuses_a_second_live_token_with_a_name(store: Store) -> None:
    """The partial unique index holds even for a writer skipping the repository's check."""
    with store.unit_of_work() as uow:
        uow.create_token(token("ci"))
    duplicate = token("ci")
    row = {
        "id": duplicate.id,
        "name": "ci",
        "role": "viewer",
        "workspace": "default",
        "token_hash": duplicate.token_hash,
        "created_at": T0,
        "created_by": "test",
    }
    with pytest.raises(IntegrityError), store.unit_of_work() as uow:
        uow.connection.execute(api_tokens.insert(), row)
    with store.unit_of_work() as uow:  # a revoked one with the same name is allowed
        uow.connection.execute(api_tokens.insert(), {**row, "revoked_at": T0})
    assert len(store_tokens(store)) == 2
