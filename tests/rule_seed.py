"""Rules for the CLI and API tests: a pack ``seed`` with one timer rule and one event rule,
stored in a database the way ``treadle scheduler`` stores them at start-up."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from treadle.common.loader import load_packs
from treadle.scheduler.service.rule_sync import sync_rules
from treadle.scheduler.store import Store

RULES = """\
name: nightly
ref: seed.nightly
description: a cron timer
trigger:
  type: core.crontimer
  parameters: {expression: "0 30 2 * * *", timezone: Europe/Berlin}
action:
  ref: core.echo
  parameters: {message: "{{ trigger.fired_at }}"}
---
name: on_order
ref: seed.on_order
trigger: {type: shop.order.*}
criteria: ["trigger.total > 100"]
action:
  ref: ACTION
"""


def seed_rules(store: Store, folder: Path, now: datetime, *, action: str) -> None:
    """Write the pack under ``folder`` and store its rules in ``store``; the event rule
    starts ``action`` (without parameters)."""
    pack = folder / "seed"
    (pack / "rules").mkdir(parents=True, exist_ok=True)
    (pack / "pack.yaml").write_text("ref: seed\n")
    (pack / "rules" / "seed.yaml").write_text(RULES.replace("ACTION", action))
    catalog = load_packs([pack])
    assert catalog.issues == []
    with store.unit_of_work() as uow:
        sync_rules(uow, catalog.rules, {"seed"}, now=now)
