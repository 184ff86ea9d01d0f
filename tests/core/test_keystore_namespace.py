"""``kv`` / ``keystore`` in templates: ``kv.get_secret('name')`` gives what the run holds
for the entry (a reference for a secret), and only that method is callable."""

from __future__ import annotations

import pytest

from treadle.common.errors import ExpressionError
from treadle.common.expr import TemplateEngine
from treadle.scheduler.core.namespaces import KeystoreView

REF = "\u27e6secret:00112233445566ff:kv:db.password\u27e7"


def test_get_secret_reads_an_entry_and_refuses_a_missing_one() -> None:
    engine = TemplateEngine()
    kv = KeystoreView({"db.password": REF, "region": "eu"})
    context = {"kv": kv, "keystore": kv}
    assert engine.render("{{ kv.get_secret('db.password') }}", context) == REF
    assert engine.render("pg://app:{{ kv.get_secret('db.password') }}@db", context) == (
        f"pg://app:{REF}@db"
    )
    assert engine.render("{{ keystore['db.password'] }}", context) == REF
    assert engine.render("{{ kv.get_secret('region') }}", context) == "eu"
    assert engine.render("{{ kv.get('missing', 'fallback') }}", context) == "fallback"
    with pytest.raises(ExpressionError, match="the keystore has no entry 'nope'"):
        engine.render("{{ kv.get_secret('nope') }}", context)
    with pytest.raises(ExpressionError):
        engine.render("{{ kv._entries }}", context)
