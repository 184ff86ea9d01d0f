"""The ``webhooks`` list of ``pack.yaml``: what a pack may declare, and every mistake
reported with its file and line (a secret in the file above all)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from treadle.common.loader import load_packs
from treadle.common.spec import WebhookSpec


def pack(root: Path, ref: str, webhooks: str) -> Path:
    folder = root / ref
    folder.mkdir(parents=True)
    text = f"ref: {ref}\nwebhooks:\n" + textwrap.indent(textwrap.dedent(webhooks), "  ")
    (folder / "pack.yaml").write_text(text)
    return folder


def test_a_pack_declares_webhooks_naming_their_keystore_secret(tmp_path: Path) -> None:
    pack(
        tmp_path,
        "forge",
        """\
        - name: forge-push
          event_type: forge.push
          keystore_secret: forge.webhook_secret
          description: pushes to the main repository
        """,
    )
    catalog = load_packs([tmp_path])
    assert catalog.issues == []
    assert catalog.packs["forge"].webhooks == (
        WebhookSpec(
            name="forge-push", event_type="forge.push", keystore_secret="forge.webhook_secret"
        ),
    )


def test_every_mistake_is_an_issue_with_its_line(tmp_path: Path) -> None:
    folder = pack(
        tmp_path,
        "forge",
        """\
        - name: a/b
          event_type: x
          keystore_secret: k
        - name: ok
          event_type: x
          secret: hunter2
        - name: twice
          event_type: x
          keystore_secret: k
        - name: twice
          event_type: y
          keystore_secret: k
        - event_type: x
          keystore_secret: k
        - just a string
        """,
    )
    catalog = load_packs([tmp_path])
    found = [(issue.loc.line, issue.message) for issue in catalog.issues]
    file = str(folder / "pack.yaml")
    assert {issue.loc.file for issue in catalog.issues} == {file}
    assert [line for line, _ in found] == sorted(line for line, _ in found)
    messages = " | ".join(message for _, message in found)
    assert "webhook name 'a/b'" in messages
    assert "never holds a webhook's secret" in messages
    assert "needs a 'keystore_secret'" in messages
    assert "webhook 'twice' is declared twice" in messages
    assert "needs a 'name'" in messages
    assert "must be a mapping" in messages
    # the broken entries are left out (and the errors refuse a reload); the rest loads
    assert [hook.name for hook in catalog.packs["forge"].webhooks] == ["twice"]


def test_a_webhook_name_is_unique_across_packs(tmp_path: Path) -> None:
    hook = "- {name: shared, event_type: x, keystore_secret: k}\n"
    pack(tmp_path, "alpha", hook)
    beta = pack(tmp_path, "beta", hook)
    catalog = load_packs([tmp_path])
    [issue] = catalog.issues
    assert issue.loc.file == str(beta / "pack.yaml")
    assert "declared by pack 'alpha' and by pack 'beta'" in issue.message
    assert [h.name for h in catalog.packs["alpha"].webhooks] == ["shared"]
    assert catalog.packs["beta"].webhooks == ()
