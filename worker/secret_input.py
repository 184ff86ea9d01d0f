"""Put secrets into an attempt's input just before the action runs, and only there.

The dispatch's input holds references (:mod:`treadle.common.secret_refs`); its
``secrets`` field carries, for each reference the scheduler vouched for, the ciphertext of
the value. Here the worker decrypts them with ``TREADLE_SECRET_KEY`` and substitutes the
references, and :func:`treadle.worker.execute.execute` blanks the values out of the
result and error it reports (:mod:`treadle.worker.redaction`). The values live in this
process's memory for the length of the attempt, nowhere else.

A reference the dispatch carries no ciphertext for is refused (``SecretUnavailable``)
rather than handed to the action as text: the secret was deleted, was stored in plain
text before encryption, or the "reference" imitates one. A worker without the key, or
with a key that does not decrypt, fails the attempt with a message naming the variable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from treadle.common.errors import ConfigurationError
from treadle.common.messages import TaskDispatch
from treadle.common.redaction import secret_values_of
from treadle.common.secret_box import Keyring, SecretNotDecrypted
from treadle.common.secret_refs import has_marker, references_in, substitute
from treadle.worker.errors import ActionError

#: Error types of attempts whose secrets could not be put in place.
SECRET_UNAVAILABLE = "SecretUnavailable"  # noqa: S105 (error type names)
SECRET_KEY_ERROR = "SecretKeyError"  # noqa: S105


@dataclass(frozen=True, slots=True)
class RevealedInput:
    """The input the action gets, and the secret texts to blank out of what it reports."""

    input: dict[str, Any]
    secrets: tuple[str, ...] = ()


def reveal(dispatch: TaskDispatch, keys: Callable[[], Keyring]) -> RevealedInput:
    """The dispatch's input with its secrets in place; raises ActionError if one cannot be."""
    given = dispatch.input
    if not has_marker(given):
        return RevealedInput(given)
    refs = references_in(given)
    if not refs:
        return RevealedInput(given)
    carried = dispatch.secrets or {}
    missing = sorted({ref.label for text, ref in refs.items() if text not in carried})
    if missing:
        raise ActionError(
            SECRET_UNAVAILABLE,
            f"the input refers to {', '.join(missing)}, which the dispatch does not carry: "
            "deleted since the run started, stored in plain text before encryption (run "
            "`treadle secrets rotate-key`), or not a reference of this run",
        )
    try:
        keyring = keys()
    except ConfigurationError as exc:
        raise ActionError(SECRET_KEY_ERROR, str(exc)) from None
    values: dict[str, Any] = {}
    for text, ref in refs.items():
        try:
            values[text] = keyring.decrypt(carried[text])
        except SecretNotDecrypted as exc:
            raise ActionError(SECRET_KEY_ERROR, f"cannot decrypt {ref.label}: {exc}") from None
    revealed = substitute(given, values.__getitem__)
    return RevealedInput(revealed, secret_values_of(list(values.values())))
