"""Registers each command group's module on the typer app."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Attach every command module; each exposes ``register(app)``."""
    from importlib import import_module

    for module in (
        "validate_cmd",
        "db_cmd",
        "run_cmd",
        "runs_cmd",
        "runs_dialects_cmd",
        "runs_purge_cmd",
        "inquiry_cmd",
        "events_cmd",
        "kv_cmd",
        "secrets_cmd",
        "tokens_cmd",
        "webhooks_cmd",
        "audit_cmd",
        "workflows_cmd",
        "worker_cmd",
        "scheduler_cmd",
        "beat_cmd",
        "schedules_cmd",
        "rules_cmd",
        "import_cmd",
        "api_cmd",
        "flower_cmd",
    ):
        import_module(f"treadle.cli.{module}").register(app)
