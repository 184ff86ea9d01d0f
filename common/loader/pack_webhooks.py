"""The ``webhooks`` list of a ``pack.yaml``: webhooks a pack declares, checked as it loads.

A pack may declare the webhooks its workflows are started by, next to them::

    webhooks:
      - name: github-push                      # POST /api/v1/webhooks/github-push
        event_type: github.push                # what a delivery becomes
        keystore_secret: github.webhook_secret # the keystore secret entry with the secret

The shared secret itself never sits in a pack file: ``keystore_secret`` names a secret
entry of the keystore (of the ``default`` workspace, the one pack webhooks belong to),
set with ``treadle kv set KEY VALUE --secret``. A ``secret`` field is refused with that
explanation rather than ignored. Each problem is an issue with its line and column.
"""

from __future__ import annotations

from typing import Any, Final

from treadle.common.loader.reader import Reader
from treadle.common.source import Path
from treadle.common.spec import WebhookSpec
from treadle.common.webhooks import WEBHOOK_NAME

__all__ = ["WEBHOOK_FIELDS", "read_webhooks"]

WEBHOOK_FIELDS: Final = ("name", "event_type", "keystore_secret", "description")

_KEEP_OUT_OF_FILES: Final = (
    "a pack file never holds a webhook's secret: store it with `treadle kv set KEY VALUE "
    "--secret` and name that key in 'keystore_secret'"
)


def read_webhooks(reader: Reader, value: Any, path: Path) -> tuple[WebhookSpec, ...]:
    """The webhooks declared at ``path`` (a list of mappings); issues go to ``reader``."""
    if value is None:
        return ()
    if not isinstance(value, list):
        reader.error(path, "'webhooks' must be a list of webhooks (name, event_type, ...)")
        return ()
    found: list[WebhookSpec] = []
    names: set[str] = set()
    for index, entry in enumerate(value):
        where = (*path, index)
        declared = _webhook(reader, entry, where)
        if declared is None:
            continue
        if declared.name in names:
            reader.error((*where, "name"), f"webhook '{declared.name}' is declared twice")
            continue
        names.add(declared.name)
        found.append(declared)
    return tuple(found)


def _webhook(reader: Reader, entry: Any, where: Path) -> WebhookSpec | None:
    if not isinstance(entry, dict):
        reader.error(where, "a webhook must be a mapping: name, event_type, keystore_secret")
        return None
    data: dict[Any, Any] = entry
    reader.check_fields(
        data, where, "a webhook", WEBHOOK_FIELDS, special={"secret": _KEEP_OUT_OF_FILES}
    )
    name = reader.text(data.get("name"), (*where, "name"), "'name'")
    event_type = reader.text(data.get("event_type"), (*where, "event_type"), "'event_type'")
    key = reader.text(data.get("keystore_secret"), (*where, "keystore_secret"), "'keystore_secret'")
    reader.text(data.get("description"), (*where, "description"), "'description'")
    ok = True
    if name is None:
        reader.error(where, "a webhook needs a 'name' (the last part of its URL)")
        ok = False
    elif not WEBHOOK_NAME.fullmatch(name):
        reader.error(
            (*where, "name"),
            f"webhook name {name!r}: letters, digits, '.', '_' and '-' only, starting with "
            "a letter or digit, at most 100 characters",
        )
        ok = False
    if not event_type or not event_type.strip():
        reader.error(where, "a webhook needs an 'event_type' (what its deliveries become)")
        ok = False
    if not key or not key.strip():
        reader.error(
            where,
            "a webhook needs a 'keystore_secret': the key of the keystore secret entry "
            "holding its shared secret",
        )
        ok = False
    if not ok or name is None or event_type is None or key is None:
        return None
    return WebhookSpec(name=name, event_type=event_type, keystore_secret=key)
