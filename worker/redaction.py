"""Keeping ``secret`` parameter values out of what an attempt reports.

Error messages and details are stored with the run and shown to anyone who can read it,
so values of parameters declared ``secret: true`` are blanked out of them, and input
problems about a secret parameter say which rule it breaks without quoting the value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from jsonschema.validators import Draft202012Validator

from treadle.common.messages import ErrorInfo
from treadle.common.spec import ParameterSpec

REDACTED = "***"
# Shorter secret values are not blanked out of error text: it would garble every message.
MIN_REDACTED_LENGTH = 4


def secret_values(params: Sequence[ParameterSpec], given: dict[str, Any]) -> tuple[str, ...]:
    """The text of every ``secret`` parameter's value (given or default), longest first."""
    found: set[str] = set()

    def collect(value: Any) -> None:
        if isinstance(value, str):
            if len(value) >= MIN_REDACTED_LENGTH:
                found.add(value)
        elif isinstance(value, dict):
            for item in value.values():
                collect(item)
        elif isinstance(value, list | tuple):
            for item in value:
                collect(item)

    for p in params:
        if p.secret:
            collect(given.get(p.name, p.default))
    return tuple(sorted(found, key=len, reverse=True))


def redacted(error: ErrorInfo, secrets: tuple[str, ...]) -> ErrorInfo:
    if not secrets:
        return error
    return ErrorInfo(
        type=error.type,
        message=_redact(error.message, secrets),
        details=_redact(error.details, secrets),
    )


def _redact(value: Any, secrets: tuple[str, ...]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return value
    if isinstance(value, dict):
        return {k: _redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact(v, secrets) for v in value]
    return value


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
