"""What the workflows API tests share: a definition to publish, headers, the audit trail."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from typing import Any

from treadle.common.access import Role
from treadle.scheduler.store import Store

ErrorShape = Callable[..., dict[str, Any]]
Bearer = Callable[[Role], dict[str, str]]

YAML = {"Content-Type": "application/yaml"}

GREET = textwrap.dedent(
    """\
    ref: shop.greet
    label: Greet
    description: Says hello
    metadata: {tags: [people, hello]}
    parameters:
      name: {type: string, required: true}
    tasks:
      - name: say
        action: core.echo
        input: {message: "hi {{ parameters.name }}"}
        next: [{do: done}]
      - name: done
        action: core.noop
    """
)


def audit_entries(store: Store, prefix: str) -> list[Any]:
    with store.unit_of_work() as uow:
        entries = uow.list_audit(workspace=None, action=None)
    return [entry for entry in reversed(entries) if entry.action.startswith(prefix)]


# -- publishing --------------------------------------------------------------------------------
