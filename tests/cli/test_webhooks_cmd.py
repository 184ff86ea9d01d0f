"""``treadle webhooks create|list|delete`` as a user runs them: a generated secret is printed
once and signs deliveries the API accepts, nothing shows or stores it in clear again, and
every change is in the audit log under ``cli:<login>``."""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime, timedelta
from typing import Any

from treadle.common.settings import os_login
from treadle.common.webhooks import signed_headers
from treadle.scheduler.service.webhooks import verify_delivery
from treadle.scheduler.store import Store

from .conftest import TREADLE

NOT_SHOWN_AGAIN = "it cannot be shown again"


def verifies(treadle: Any, name: str, secret: str) -> bool:
    """Whether a delivery signed with ``secret`` verifies against the stored webhook (the
    check ``POST /api/v1/webhooks/<name>`` makes), on the command's database and key."""
    now = datetime.now(UTC)
    body = b'{"ok": true}'
    headers = signed_headers(secret, int(now.timestamp()), body)
    store = Store.open(f"sqlite:///{treadle.database}")
    try:
        with store.snapshot() as reader:
            verified = verify_delivery(
                reader,
                store.keys,
                name=name,
                timestamp=headers["X-Treadle-Timestamp"],
                signature=headers["X-Treadle-Signature"],
                body=body,
                now=now,
                tolerance=timedelta(seconds=300),
            )
        return verified.webhook.name == name
    finally:
        store.close()


def audit(treadle: Any) -> Any:
    return treadle("audit", "list", "--json", code=0).json()


def test_a_generated_secret_is_printed_once_and_signs_deliveries(treadle: Any) -> None:
    created = treadle("webhooks", "create", "--name", "forge", "--event-type", "push", code=0)
    secret = created.stdout.strip()
    assert secret.startswith("whsec_")
    assert len(created.stdout.splitlines()) == 1  # only the secret on stdout: scripts take it
    assert NOT_SHOWN_AGAIN in created.stderr
    assert "/api/v1/webhooks/forge" in created.stderr
    assert verifies(treadle, "forge", secret)

    listed = treadle("webhooks", "list", code=0)
    header, row = listed.stdout.splitlines()
    assert header.split() == ["name", "workspace", "event", "type", "source", "created"]
    assert row.split()[:4] == ["forge", "default", "push", "api"]
    as_json = treadle("webhooks", "list", "--json", code=0)
    [document] = as_json.json()
    assert document["created_by"] == f"cli:{os_login()}"
    for shown in (listed.output, as_json.output):
        assert secret not in shown
    assert secret.encode() not in treadle.database.read_bytes()
    [entry] = [e for e in audit(treadle) if e["action"] == "webhook.create"]
    assert (entry["actor"], entry["target"], entry["outcome"]) == (
        f"cli:{os_login()}",
        "forge",
        "ok",
    )
    assert secret not in json.dumps(entry)


def test_a_secret_from_stdin_is_never_printed(treadle: Any) -> None:
    argv = ["webhooks", "create", "--name", "shop", "--event-type", "order.placed"]
    done = subprocess.run(
        [str(TREADLE), *argv, "--workspace", "team-a", "--secret-stdin", "--json"],
        input="my-own-secret-0123\n",
        capture_output=True,
        text=True,
        cwd=treadle.workdir,
        env=treadle.env,
        timeout=60,
        check=False,
    )
    out, err = done.stdout, done.stderr
    assert done.returncode == 0, err
    document = json.loads(out)
    assert (document["name"], document["workspace"], document["secret"]) == (
        "shop",
        "team-a",
        None,
    )
    assert "my-own-secret-0123" not in out + err
    assert verifies(treadle, "shop", "my-own-secret-0123")


def test_bad_input_and_taken_names_change_nothing(treadle: Any) -> None:
    treadle("webhooks", "create", "--name", "forge", "--event-type", "push", code=0)
    taken = treadle("webhooks", "create", "--name", "forge", "--event-type", "x", code=2)
    assert "already a webhook named 'forge'" in taken.stderr
    bad = treadle("webhooks", "create", "--name", "a/b", "--event-type", "x", code=2)
    assert "letters, digits" in bad.stderr
    assert [d["name"] for d in treadle("webhooks", "list", "--json", code=0).json()] == ["forge"]
    outcomes = [(e["target"], e["outcome"]) for e in audit(treadle)]
    assert ("forge", "refused") in outcomes
    assert ("a/b", "failed") in outcomes


def test_delete_removes_a_webhook(treadle: Any) -> None:
    created = treadle("webhooks", "create", "--name", "forge", "--event-type", "push", code=0)
    deleted = treadle("webhooks", "delete", "forge", code=0)
    assert "deleted webhook 'forge' (workspace default)" in deleted.stdout
    assert treadle("webhooks", "list", "--json", code=0).json() == []
    missing = treadle("webhooks", "delete", "forge", code=2)
    assert "webhook 'forge' not found" in missing.stderr
    assert not verifies_quietly(treadle, created.stdout.strip())


def verifies_quietly(treadle: Any, secret: str) -> bool:
    from treadle.common.errors import Unauthenticated

    try:
        return verifies(treadle, "forge", secret)
    except Unauthenticated:
        return False
