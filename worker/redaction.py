"""Keeping ``secret`` parameter values out of what an attempt reports.

The rule itself lives in :mod:`treadle.common.redaction`; this module applies it to
errors and to input problems.

Error messages and details are stored with the run and shown to anyone who can read it,
so values of parameters declared ``secret: true`` are blanked out of them, and input
problems about a secret parameter say which rule it breaks without quoting the value.
"""

from __future__ import annotations

from treadle.common.messages import ErrorInfo
from treadle.common.redaction import redact


def redacted(error: ErrorInfo, secrets: tuple[str, ...]) -> ErrorInfo:
    if not secrets:
        return error
    return ErrorInfo(
        type=error.type,
        message=redact(error.message, secrets),
        details=redact(error.details, secrets),
    )
