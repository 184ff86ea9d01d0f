"""Webhooks: making and removing them, and deciding whether a delivery is genuine.

Outside systems call ``POST /api/v1/webhooks/<name>`` with no API token: a delivery
proves it comes from whoever holds the webhook's shared secret by its signature
(:mod:`treadle.common.webhooks` has the scheme). The HTTP API and ``treadle webhooks``
share what is decided here, once:

* :func:`create` checks a new webhook (name, event type, secret), generates the secret
  when none is given (it is shown once: only its ciphertext is stored) and stores it in
  the workspace of whoever makes it; names are unique across the installation.
* :func:`remove` deletes one of a workspace's webhooks; a webhook a pack declares is
  refused (it comes back with the pack: remove it from ``pack.yaml`` instead).
* :func:`verify_delivery` checks a delivery: both headers present, the timestamp within
  ``tolerance`` of the server's clock (either way), the webhook known and the signature
  equal, compared in constant time, to the one its secret gives. Every refusal is
  Unauthenticated (401); "no such webhook" and "wrong signature" read the same, so a
  caller learns nothing about which names exist. Nothing is written.
* :func:`delivery_event_id`: a delivery's event id is derived from its signature, so the
  same delivery can never record two events, whatever else happens.

A replay (a delivery whose signature was accepted before) is refused by the route with
the store's ``webhook_deliveries`` (``claim_webhook_delivery`` in the transaction that
records the event).
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, NoReturn

from treadle.common.errors import (
    ConfigurationError,
    ConflictError,
    NotFound,
    ParameterError,
    Unauthenticated,
)
from treadle.common.secret_box import SecretNotDecrypted
from treadle.common.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WEBHOOK_NAME,
    generate_secret,
    parse_signature,
    parse_timestamp,
    sign,
)
from treadle.scheduler.core.namespaces import iso
from treadle.scheduler.store import UnitOfWork
from treadle.scheduler.store.secret_keys import StoreKeys
from treadle.scheduler.store.webhook_repo import WebhookEntry

__all__ = [
    "MIN_SECRET_LENGTH",
    "VerifiedDelivery",
    "create",
    "delivery_event_id",
    "remove",
    "shown",
    "verify_delivery",
]

log = logging.getLogger("treadle.webhooks")

#: The shortest shared secret accepted (a generated one has 49 characters).
MIN_SECRET_LENGTH: Final = 16
#: The longest shared secret accepted.
MAX_SECRET_LENGTH: Final = 512

#: The one answer to a delivery whose webhook is unknown or whose signature is wrong.
_REFUSED: Final = "the delivery's signature does not verify (or there is no such webhook)"
_DUMMY_SECRET: Final = "treadle-no-such-webhook"  # noqa: S105 (compared against, never used)


def shown(entry: WebhookEntry) -> dict[str, Any]:
    """A webhook as users see it: never its secret nor its ciphertext (a pack webhook's
    keystore key is shown: it names where the secret is, not what it is)."""
    return {
        "name": entry.name,
        "workspace": entry.workspace,
        "event_type": entry.event_type,
        "source": "pack" if entry.pack is not None else "api",
        "pack": entry.pack,
        "keystore_secret": entry.keystore_secret,
        "created_at": iso(entry.created_at),
        "created_by": entry.created_by,
        "url": f"/api/v1/webhooks/{entry.name}",
    }


def create(
    uow: UnitOfWork,
    *,
    name: str,
    event_type: str,
    secret: str | None,
    workspace: str,
    created_by: str,
    now: datetime,
) -> tuple[WebhookEntry, str | None]:
    """Store a new webhook of ``workspace``; returns it and the secret when one was
    generated (else None: the caller knows it). ParameterError for a bad name, event type
    or secret; ConflictError when the name is taken in any workspace."""
    problems: list[str] = []
    if not WEBHOOK_NAME.fullmatch(name):
        problems.append(
            f"name {name!r}: letters, digits, '.', '_' and '-' only, starting with a letter "
            "or digit, at most 100 characters"
        )
    if not event_type.strip():
        problems.append("the event type must be non-empty text")
    if secret is not None and not MIN_SECRET_LENGTH <= len(secret) <= MAX_SECRET_LENGTH:
        problems.append(
            f"a secret has {MIN_SECRET_LENGTH} to {MAX_SECRET_LENGTH} characters; leave it "
            "out to have one generated"
        )
    if problems:
        raise ParameterError(problems, subject="webhook")
    generated = generate_secret() if secret is None else None
    entry = uow.create_webhook(
        name=name,
        workspace=workspace,
        event_type=event_type,
        secret=secret if secret is not None else str(generated),
        created_by=created_by,
        at=now,
    )
    return entry, generated


def remove(uow: UnitOfWork, name: str, *, workspace: str | None) -> WebhookEntry:
    """Delete the webhook ``name`` of ``workspace`` (of any workspace when None); NotFound
    when there is none there, ConflictError for a webhook a pack declares."""
    entry = uow.webhook(name)
    if entry is None or (workspace is not None and entry.workspace != workspace):
        raise NotFound(f"webhook {name!r} not found")
    if entry.pack is not None:
        raise ConflictError(
            f"webhook {name!r} is declared by pack {entry.pack!r} in its pack.yaml: remove "
            "it there and reload the packs"
        )
    uow.delete_webhook(name)
    return entry


@dataclass(frozen=True)
class VerifiedDelivery:
    """A delivery whose signature verified: its webhook, signature (hex) and timestamp."""

    webhook: WebhookEntry
    signature: str
    signed_at: datetime


def verify_delivery(
    reader: UnitOfWork,
    keys: StoreKeys,
    *,
    name: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: datetime,
    tolerance: timedelta,
) -> VerifiedDelivery:
    """The delivery, verified (see the module docstring); Unauthenticated otherwise.

    A secret no configured key decrypts is ConfigurationError (the server's keys are
    wrong, not the caller's signature).
    """
    if not timestamp or not signature:
        _refuse(
            name,
            f"a webhook delivery needs the headers {TIMESTAMP_HEADER} and {SIGNATURE_HEADER} "
            "(see docs/api.md)",
        )
    seconds = parse_timestamp(timestamp)
    if seconds is None:
        _refuse(name, f"{TIMESTAMP_HEADER} must be the Unix time in seconds (digits only)")
    signed_at = datetime.fromtimestamp(seconds, UTC)
    drift = abs((now - signed_at).total_seconds())
    if drift > tolerance.total_seconds():
        _refuse(
            name,
            f"{TIMESTAMP_HEADER} is {int(drift)} s away from the server's clock, beyond the "
            f"tolerance of {int(tolerance.total_seconds())} s: sign each delivery when "
            "sending it",
        )
    given = parse_signature(signature)
    if given is None:
        _refuse(name, f"{SIGNATURE_HEADER} must be 'sha256=' and 64 hex digits")
    entry = reader.webhook(name)
    secret = _secret(reader, keys, entry) if entry is not None else None
    expected = sign(secret if secret is not None else _DUMMY_SECRET, seconds, body)
    matches = hmac.compare_digest(expected.encode("ascii"), given.encode("ascii"))
    if entry is None or secret is None or not matches:
        _refuse(name, _REFUSED)
    return VerifiedDelivery(webhook=entry, signature=expected, signed_at=signed_at)


def delivery_event_id(name: str, signature: str) -> str:
    """The id of the event a delivery records: the same delivery, the same id."""
    return f"wh-{name}-{signature[:20]}"


def _secret(reader: UnitOfWork, keys: StoreKeys, entry: WebhookEntry) -> str | None:
    """The webhook's shared secret, or None (logged) when its pack's keystore entry is
    missing or holds no text."""
    ciphertext = entry.ciphertext
    where = f"webhook {entry.name!r}"
    if ciphertext is None:
        key = entry.keystore_secret or ""
        ciphertext = reader.kv_ciphertexts([key], workspace=entry.workspace).get(key)
        where = f"keystore secret {key!r} of webhook {entry.name!r}"
        if ciphertext is None:
            log.warning(
                "webhook %s: its keystore secret entry %r (workspace %s) is not set: every "
                "delivery is refused until `treadle kv set %s VALUE --secret`",
                entry.name,
                key,
                entry.workspace,
                key,
            )
            return None
    try:
        value = keys.keyring().decrypt(ciphertext)
    except SecretNotDecrypted as exc:
        log.error("webhook %s: %s", entry.name, exc)
        raise ConfigurationError(f"the secret of {where} cannot be decrypted: {exc}") from None
    if not isinstance(value, str) or not value:
        log.warning("webhook %s: %s holds no text: every delivery is refused", entry.name, where)
        return None
    return value


def _refuse(name: str, reason: str) -> NoReturn:
    log.warning("webhook %s: delivery refused: %s", name, reason)
    raise Unauthenticated(reason)
