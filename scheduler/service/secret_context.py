"""The secret parts of a run's context: references in, values encrypted out of the run.

When a run starts, its context is fixed (``RunStarter.context``). A secret never enters
it: a secret keystore entry appears as a reference (``kv.get_secret('name')`` and
``keystore.name`` both read it), and the value of each ``secret: true`` parameter is
encrypted into ``run_secrets`` and replaced by a reference. The core then renders,
decides and stores references only; the relay attaches ciphertexts to the dispatches that
use them (:mod:`.secret_dispatch`), and the worker decrypts.

Encrypting needs the store's key (``TREADLE_SECRET_KEY``, or the embedded key file): a
start with a secret parameter on a database without one fails with a ConfigurationError
naming the variable, and its transaction stores nothing. Starts without secret
parameters need no key (keystore references need none either).

A child run shares its top-level run's reference tag, so references its parent passed it
as parameters stay valid; a secret parameter of the child given such references keeps
them, one given a plain value is encrypted like any other.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from treadle.common.secret_refs import kv_reference, param_reference, references_in
from treadle.common.spec import ParameterSpec
from treadle.scheduler.store import KeyValue, UnitOfWork


def new_secret_tag() -> str:
    """A fresh reference tag: 16 random hex digits."""
    return secrets.token_hex(8)


def keystore_snapshot(
    entries: Sequence[KeyValue], tag: str
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """``kv`` as the run sees it (secret entries as references) and the names of its
    secrets (``keystore.<key>``)."""
    keystore = {e.key: (kv_reference(tag, e.key) if e.secret else e.value) for e in entries}
    return keystore, tuple(f"keystore.{e.key}" for e in entries if e.secret)


def seal_parameters(
    uow: UnitOfWork,
    params: Sequence[ParameterSpec],
    parameters: Mapping[str, Any],
    *,
    run_id: str,
    tag: str,
) -> dict[str, Any]:
    """``parameters`` with every secret one's value encrypted into ``run_secrets`` and
    replaced by its reference. Null values stay null; values holding references of this
    run's tag (from a parent run) stay as they are."""
    sealed = dict(parameters)
    ciphertexts: dict[str, str] = {}
    for param in params:
        value = sealed.get(param.name)
        if not param.secret or value is None or _references_of(value, tag):
            continue
        ciphertexts[param.name] = uow.encrypt_secret(value)
        sealed[param.name] = param_reference(tag, run_id, param.name)
    if ciphertexts:
        uow.store_run_secrets(run_id, ciphertexts)
    return sealed


def _references_of(value: Any, tag: str) -> bool:
    return any(ref.tag == tag for ref in references_in(value).values())
