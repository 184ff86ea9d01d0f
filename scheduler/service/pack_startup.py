"""What a scheduler does with the packs it loaded when it starts: register them (actions,
webhooks declared in pack.yaml, rules) and publish their workflows.

Apart from the loop (``process.py``) because it runs once; a workflow that cannot be
published is logged and the others go on.
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from datetime import datetime

from treadle.common.catalog import Catalog
from treadle.common.errors import ConflictError, DefinitionError
from treadle.common.settings import os_login
from treadle.scheduler.service.definitions import Definitions
from treadle.scheduler.service.rule_sync import sync_rules
from treadle.scheduler.store import Store

log = logging.getLogger("treadle.scheduler")


def register_packs(store: Store, catalog: Catalog, clock: Callable[[], datetime]) -> None:
    """Record the packs, their actions, webhooks and rules."""
    with store.unit_of_work() as uow:
        uow.register_catalog(catalog, clock())
        for _pack, problem in uow.register_pack_webhooks(catalog.packs, clock()):
            log.warning("%s", problem)
        sync_rules(uow, catalog.rules, set(catalog.packs), now=clock())
    log.info(
        "registered %d pack(s) (%s): %d action(s), %d workflow(s)",
        len(catalog.packs),
        ", ".join(sorted(catalog.packs)) or "none",
        len(catalog.actions),
        len(catalog.workflows),
    )


def publish_pack_workflows(
    definitions: Definitions, catalog: Catalog, clock: Callable[[], datetime]
) -> int:
    """Publish each workflow of the packs (a new version only when it changed); how many."""
    published = 0
    author = scheduler_author()
    for ref, spec in sorted(catalog.workflows.items()):
        try:
            definitions.publish(spec, at=clock(), author=author)
            published += 1
        except (DefinitionError, ConflictError) as exc:
            log.error("workflow %s is not published: %s", ref, str(exc).splitlines()[0])
    log.info("published %d workflow definition(s)", published)
    return published


def scheduler_author() -> str:
    """Who publishes the packs' workflows at start: this scheduler, and the login it runs as."""
    return f"treadle scheduler ({os_login()}@{socket.gethostname()})"
