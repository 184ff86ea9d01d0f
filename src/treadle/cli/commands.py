"""Registers each command group's module on the typer app.

``treadle NAME ...`` imports only the modules of the top-level command ``NAME``
(:data:`MODULES_BY_COMMAND`): each module pulls in what its commands need (Pydantic
models, SQLAlchemy, Celery, rich), and typer inspects every registered function's
signature at start, so registering all of them cost every command about half a second
before it did anything. ``treadle``, ``treadle --help`` and an unknown name register every
module (the help lists them all; typer's error names the unknown command).
"""

from __future__ import annotations

from importlib import import_module
from typing import Final

import typer

#: The modules that register each top-level command (``runs`` is spread over four).
MODULES_BY_COMMAND: Final[dict[str, tuple[str, ...]]] = {
    "validate": ("validate_cmd",),
    "db": ("db_cmd",),
    "run": ("run_cmd",),
    "runs": ("runs_cmd", "runs_dialects_cmd", "runs_purge_cmd"),
    "inquiry": ("inquiry_cmd",),
    "events": ("events_cmd", "lifecycle_cmd"),
    "kv": ("kv_cmd",),
    "secrets": ("secrets_cmd",),
    "tokens": ("tokens_cmd",),
    "webhooks": ("webhooks_cmd",),
    "audit": ("audit_cmd",),
    "workflows": ("workflows_cmd",),
    "worker": ("worker_cmd",),
    "scheduler": ("scheduler_cmd",),
    "beat": ("beat_cmd",),
    "schedules": ("schedules_cmd",),
    "rules": ("rules_cmd",),
    "import": ("import_cmd",),
    "api": ("api_cmd",),
    "flower": ("flower_cmd",),
    "golden": ("golden_cmd",),
    "replay": ("replay_cmd",),
    "test": ("pack_test_cmd",),
    "health": ("health_cmd",),
    "emergency-stop": ("emergency_cmd",),
}


def register(app: typer.Typer, command: str | None = None) -> None:
    """Attach the modules of ``command`` (every module when it is ``None`` or unknown).

    Each module exposes ``register(app)``.
    """
    modules = MODULES_BY_COMMAND.get(command or "")
    if modules is None:
        modules = tuple(dict.fromkeys(m for group in MODULES_BY_COMMAND.values() for m in group))
    for module in modules:
        import_module(f"treadle.cli.{module}").register(app)
