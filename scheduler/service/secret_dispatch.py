"""Attach encrypted secrets to the dispatches that use them, as they leave the scheduler.

A dispatch's input, as the core rendered it and the outbox stores it, holds references
(:mod:`treadle.common.secret_refs`), never values. Just before the relay hands dispatches
to the publisher, each dispatch whose input holds references of its own run's tag gets
``TaskDispatch.secrets``: each reference with the ciphertext of its secret, read from the
database as stored (the keystore's ``ciphertext``, the run's ``run_secrets`` row). The
scheduler never decrypts anything; the worker does, with ``TREADLE_SECRET_KEY``.

What is not attached: references with another tag (text imitating a reference, which
the worker then refuses to run with), keystore secrets of another workspace than the
run's (each run reads its own workspace's keystore), and secrets that have no
ciphertext (deleted from the keystore since the run started, or left in plain text from
before encryption until ``treadle secrets rotate-key``): the worker fails the attempt,
naming the secret.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from treadle.common.secret_refs import SecretRef, has_marker, references_in
from treadle.scheduler.core.commands import Command, DispatchTask
from treadle.scheduler.store import UnitOfWork


def with_secrets(uow: UnitOfWork, commands: Sequence[Command]) -> list[Command]:
    """``commands`` with the ciphertexts each dispatch's references need attached."""
    wanted: dict[int, dict[str, SecretRef]] = {}
    for position, command in enumerate(commands):
        if isinstance(command, DispatchTask) and has_marker(command.dispatch.input):
            found = references_in(command.dispatch.input)
            if found:
                wanted[position] = found
    if not wanted:
        return list(commands)
    run_ids = {_run_of(commands[p]) for p in wanted}
    tags = uow.run_secret_tags(run_ids)
    valid: dict[int, dict[str, SecretRef]] = {}
    for position, refs in wanted.items():
        tag = tags.get(_run_of(commands[position]), ("", ""))[0]
        own = {text: ref for text, ref in refs.items() if tag and ref.tag == tag}
        if own:
            valid[position] = own
    every = [ref for refs in valid.values() for ref in refs.values()]
    keystore = _keystore_ciphertexts(uow, commands, valid, tags)
    params = uow.run_secret_ciphertexts(
        {(ref.run_id, ref.name) for ref in every if ref.source == "param" and ref.run_id}
    )
    attached = list(commands)
    for position, refs in valid.items():
        secrets: dict[str, str] = {}
        for text, ref in refs.items():
            ciphertext = (
                keystore.get((tags[_run_of(commands[position])][1], ref.name))
                if ref.source == "kv"
                else params.get((ref.run_id or "", ref.name))
            )
            if ciphertext is not None:
                secrets[text] = ciphertext
        if secrets:
            command = attached[position]
            assert isinstance(command, DispatchTask)
            dispatch = command.dispatch.model_copy(update={"secrets": secrets})
            attached[position] = dataclasses.replace(command, dispatch=dispatch)
    return attached


def _keystore_ciphertexts(
    uow: UnitOfWork,
    commands: Sequence[Command],
    valid: dict[int, dict[str, SecretRef]],
    tags: dict[str, tuple[str, str]],
) -> dict[tuple[str, str], str]:
    """``{(workspace, key): ciphertext}`` of the keystore secrets ``valid`` refers to, each
    read in the workspace of the run whose dispatch names it."""
    by_workspace: dict[str, set[str]] = {}
    for position, refs in valid.items():
        workspace = tags[_run_of(commands[position])][1]
        names = {ref.name for ref in refs.values() if ref.source == "kv"}
        by_workspace.setdefault(workspace, set()).update(names)
    found: dict[tuple[str, str], str] = {}
    for workspace, names in by_workspace.items():
        if names:
            for key, ciphertext in uow.kv_ciphertexts(names, workspace=workspace).items():
                found[(workspace, key)] = ciphertext
    return found


def _run_of(command: Command) -> str:
    assert isinstance(command, DispatchTask)
    return command.dispatch.run_id
