"""Keeping ``secret`` parameter values out of what an attempt reports.

The rule itself lives in :mod:`treadle.common.redaction`; this module applies it to
errors and to input problems.

Error messages and details are stored with the run and shown to anyone who can read it,
so values of parameters declared ``secret: true`` are blanked out of them, and input
problems about a secret parameter say which rule it breaks without quoting the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jsonschema.validators import Draft202012Validator

from treadle.common.messages import ErrorInfo
from treadle.common.redaction import redact
from treadle.common.spec import ParameterSpec


def redacted(error: ErrorInfo, secrets: tuple[str, ...]) -> ErrorInfo:
    if not secrets:
        return error
    return ErrorInfo(
        type=error.type,
        message=redact(error.message, secrets),
        details=redact(error.details, secrets),
    )


def without_secret_values(
    problems: Sequence[str], params: Sequence[ParameterSpec], given: dict[str, Any]
) -> list[str]:
    """The problems, with those about ``secret`` parameters rewritten to name the rule
    broken but not the value (jsonschema messages quote the value)."""
    secret = {p.name: p for p in params if p.secret}
    cleaned: list[str] = []
    for problem in problems:
        name = next(
            (n for n in secret if problem.startswith((f"parameter '{n}'", f"parameter '{n}["))),
            None,
        )
        if name is None:
            cleaned.append(problem)
            continue
        rules = sorted(
            {
                str(error.validator)
                for error in Draft202012Validator(secret[name].schema_).iter_errors(given.get(name))
            }
        )
        broken = f" (breaks: {', '.join(rules)})" if rules else ""
        entry = (
            f"parameter '{name}': invalid value, not shown because the parameter is secret{broken}"
        )
        if entry not in cleaned:
            cleaned.append(entry)
    return cleaned
