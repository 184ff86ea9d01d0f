"""Keeping the values of ``secret`` parameters out of anything Treadle shows or stores.

Worker errors, run documents, logs and progress output all pass through :func:`redact`,
so one rule decides what is hidden: every string occurrence of a secret value of at least
four characters is replaced by ``***``, and so is every secret reference
(:mod:`treadle.common.secret_refs`): its tag is what keeps imitations out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jsonschema.validators import Draft202012Validator

from treadle.common.secret_refs import MARKER, mask_references
from treadle.common.spec import ParameterSpec

REDACTED = "***"
# Shorter secret values are not blanked out of text: it would garble every message.
MIN_REDACTED_LENGTH = 4


def secret_values(params: Sequence[ParameterSpec], given: Mapping[str, Any]) -> tuple[str, ...]:
    """The text of every ``secret`` parameter's value (given or default), longest first."""
    return secret_values_of(
        [given.get(p.name, p.default) for p in params if p.secret],
    )


def secret_values_of(values: Sequence[Any]) -> tuple[str, ...]:
    """Every string of at least four characters inside ``values``, longest first."""
    found: set[str] = set()

    def collect(value: Any) -> None:
        if isinstance(value, str):
            if len(value) >= MIN_REDACTED_LENGTH:
                found.add(value)
        elif isinstance(value, Mapping):
            for item in value.values():
                collect(item)
        elif isinstance(value, list | tuple):
            for item in value:
                collect(item)

    for value in values:
        collect(value)
    return tuple(sorted(found, key=len, reverse=True))


def redact(value: Any, secrets: Sequence[str]) -> Any:
    """``value`` with every occurrence of each secret replaced; containers are copied."""
    if not secrets:
        return value
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, REDACTED)
        return mask_references(value, REDACTED) if MARKER in value else value
    if isinstance(value, Mapping):
        return {k: redact(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [redact(v, secrets) for v in value]
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
