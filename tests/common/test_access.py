"""Roles, principals and the token format (no database)."""

from __future__ import annotations

import hashlib
import re

from treadle.common.access import (
    DEFAULT_WORKSPACE,
    Principal,
    Role,
    issue_token,
    parse_token,
    token_hash,
)


def test_each_role_allows_what_the_roles_below_it_allow() -> None:
    allowed = {
        (role.value, needed.value) for role in Role for needed in Role if role.allows(needed)
    }
    assert allowed == {
        ("viewer", "viewer"),
        ("operator", "viewer"),
        ("operator", "operator"),
        ("admin", "viewer"),
        ("admin", "operator"),
        ("admin", "admin"),
    }


def test_the_actor_names_a_token_holder_as_a_token() -> None:
    cli = Principal(name="cli:ada", role=Role.ADMIN, workspace=DEFAULT_WORKSPACE)
    api = Principal(name="ci", role=Role.VIEWER, workspace="team", token_id="0123456789ab")
    assert (cli.actor, api.actor) == ("cli:ada", "token:ci")
    assert DEFAULT_WORKSPACE == "default"


def test_issued_tokens_have_the_documented_format_and_hash() -> None:
    tokens = [issue_token() for _ in range(50)]
    for token in tokens:
        assert re.fullmatch(r"trd_[0-9a-f]{12}_[A-Za-z0-9_-]{43}", token.plaintext), token
        assert token.plaintext.startswith(f"trd_{token.token_id}_")
        assert token.token_hash == hashlib.sha256(token.plaintext.encode()).hexdigest()
        assert token_hash(token.plaintext) == token.token_hash
        assert parse_token(token.plaintext) == token.token_id
        assert token.plaintext not in repr(token)
    assert len({t.plaintext for t in tokens}) == len({t.token_id for t in tokens}) == 50


def test_text_that_is_not_a_token_parses_to_none() -> None:
    good = issue_token().plaintext
    for bad in (
        "",
        "trd_",
        good[:-1],
        good + "x",
        good.upper(),
        good.replace("trd_", "trx_", 1),
        f" {good}",
        f"{good}\n",
        f"trd_{'g' * 12}_{'a' * 43}",
        f"trd_{'a' * 12}_{'a' * 42}!",
    ):
        assert parse_token(bad) is None, bad
