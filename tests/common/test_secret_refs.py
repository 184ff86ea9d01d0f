"""Secret references and the keyring: the marker format, substitution, masking, Fernet keys.

References are what runs hold instead of secrets; the worker substitutes them (whole
values keep their JSON type, references inside text become text) and anything shown
masks them. The keyring encrypts with the first key and decrypts with any.
"""

from __future__ import annotations

import pytest

from treadle.common.errors import ConfigurationError
from treadle.common.messages import TaskDispatch
from treadle.common.redaction import redact
from treadle.common.secret_box import Keyring, SecretNotDecrypted, generate_key
from treadle.common.secret_refs import (
    SecretRef,
    has_marker,
    kv_reference,
    mask_references,
    param_reference,
    references_in,
    substitute,
)

TAG = "00112233445566ff"


def test_references_are_found_inside_any_value_and_keep_their_parts() -> None:
    kv = kv_reference(TAG, "db.password")
    param = param_reference(TAG, "r-0123456789abcdef", "token")
    assert kv == "\u27e6secret:00112233445566ff:kv:db.password\u27e7"
    value = {"dsn": f"pg://app:{kv}@db", "list": [param, 3], "plain": "text"}
    assert has_marker(value)
    assert not has_marker({"plain": "a [secret:x] lookalike", "n": 1})
    assert references_in(value) == {
        kv: SecretRef(TAG, "kv", "db.password"),
        param: SecretRef(TAG, "param", "token", "r-0123456789abcdef"),
    }
    # not references: a short tag, an unknown source, a param without its run
    for text in ("\u27e6secret:0011:kv:x\u27e7", f"\u27e6secret:{TAG}:env:x\u27e7",
                 f"\u27e6secret:{TAG}:param:token\u27e7"):  # fmt: skip
        assert references_in({"v": text}) == {}


def test_a_whole_reference_becomes_the_value_and_one_inside_text_its_text() -> None:
    kv = kv_reference(TAG, "conf")
    values = {kv: {"port": 5432}}
    given = {"whole": kv, "inside": f"port={kv}!", "nested": [{"deep": kv}], "n": 1}
    assert substitute(given, values.__getitem__) == {
        "whole": {"port": 5432},
        "inside": 'port={"port":5432}!',
        "nested": [{"deep": {"port": 5432}}],
        "n": 1,
    }


def test_shown_values_mask_every_reference_whatever_its_tag() -> None:
    forged = "\u27e6secret:whatever:kv:x\u27e7"
    assert mask_references({"a": f"u:{forged}@h"}, "***") == {"a": "u:***@h"}
    assert redact({"a": f"{forged} and s3cr3t"}, ("s3cr3t",)) == {"a": "*** and ***"}


def test_the_keyring_encrypts_with_the_first_key_and_decrypts_with_any() -> None:
    old, new = generate_key(), generate_key()
    token = Keyring.parse(old).encrypt({"user": "app", "pw": "x"})
    both = Keyring.parse(f" {new} , {old} ")
    assert both.size == 2
    assert both.decrypt(token) == {"user": "app", "pw": "x"}
    assert not both.is_current(token)
    rotated = both.rotate(token)
    assert both.is_current(rotated)
    assert Keyring.parse(new).decrypt(rotated) == {"user": "app", "pw": "x"}
    with pytest.raises(SecretNotDecrypted, match="TREADLE_SECRET_KEY"):
        Keyring.parse(old).decrypt(rotated)
    with pytest.raises(ConfigurationError, match="key 2 of 2 is not a Fernet key"):
        Keyring.parse(f"{new},nope")
    with pytest.raises(ConfigurationError, match="holds no key"):
        Keyring.parse(" , ")


def test_a_dispatch_carries_secrets_only_when_it_has_some() -> None:
    plain = TaskDispatch(
        attempt_id="r-1/1/0/1", run_id="r-1", task="t", execution=1, attempt=1, action_ref="a"
    )
    assert "secrets" not in plain.model_dump(mode="json")  # the previous release's shape
    carrying = plain.model_copy(update={"secrets": {kv_reference(TAG, "k"): "gAAAA-cipher"}})
    assert TaskDispatch.model_validate_json(carrying.model_dump_json()) == carrying
    assert "gAAAA-cipher" not in repr(carrying)
