"""core.echo: returns its message, so workflows can compute and show a text."""

from __future__ import annotations


def echo(message: str) -> dict[str, str]:
    return {"message": message}
