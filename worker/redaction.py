"""Keeping secret values out of what an attempt reports.

The rule itself lives in :mod:`treadle.common.redaction`; this module applies it to
errors, results and input problems.

Errors and results are stored with the run and shown to anyone who can read it, so
values of action parameters declared ``secret: true``, and every secret the worker
decrypted into the input (keystore secrets, secret workflow parameters), are blanked out
of them (an action that echoes its input, a shell command's output, an exception quoting
a connection URL). Input problems about a secret parameter say which rule it breaks
without quoting the value.
"""

from __future__ import annotations

from typing import Any

from treadle.common.messages import ErrorInfo
from treadle.common.redaction import redact


def merged(*groups: tuple[str, ...]) -> tuple[str, ...]:
    """Several lists of secret texts as one, longest first (as :func:`redact` needs)."""
    return tuple(sorted({text for group in groups for text in group}, key=len, reverse=True))


def redacted_result(result: Any, secrets: tuple[str, ...]) -> Any:
    """An action's result with every secret text blanked out (copied only if needed)."""
    return redact(result, secrets) if secrets else result


def redacted(error: ErrorInfo, secrets: tuple[str, ...]) -> ErrorInfo:
    if not secrets:
        return error
    return ErrorInfo(
        type=error.type,
        message=redact(error.message, secrets),
        details=redact(error.details, secrets),
    )
