"""core.fail: fails on purpose, to exercise and demonstrate failure handling."""

from __future__ import annotations

from typing import NoReturn


class ActionFailed(Exception):
    """The error ``core.fail`` raises; workflows see ``error.type == "ActionFailed"``."""


def fail(message: str = "failed on purpose") -> NoReturn:
    raise ActionFailed(message)
