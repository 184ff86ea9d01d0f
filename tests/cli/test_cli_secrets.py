"""A ``secret: true`` parameter's value never appears in anything ``treadle`` prints.

The workflow puts the secret into an action's input, a task's result, the run's output and,
on request, a task's error message or an inquiry's prompt; the value must not show in
stdout, stderr (progress included), ``runs show``, ``inquiry list|show``, or the error for a
value that breaks the parameter's schema.
"""

from __future__ import annotations

import re
from typing import Any

SECRET = "hunter2-correct-horse-battery"
SHORT_SECRET = "hunter2-too-short"

WORKFLOW = """\
ref: demo.secret
parameters:
  token: {type: string, secret: true, required: true, minLength: 20}
  then: {type: string, enum: [stop, reject, ask], default: stop}
tasks:
  - name: call
    action: core.echo
    input: {message: "calling with {{ parameters.token }}"}
    next:
      - when: "{{ succeeded() and parameters.then == 'reject' }}"
        do: [reject]
      - when: "{{ succeeded() and parameters.then == 'ask' }}"
        do: [confirm]
  - name: reject
    action: core.fail
    input: {message: "token {{ parameters.token }} was rejected"}
  - name: confirm
    action: core.ask
    input:
      prompt: "Really send {{ parameters.token }}?"
      schema: {type: object}
output_map:
  said: "{{ task.call.result.message }}"
"""


def test_a_secret_parameter_never_shows(treadle: Any) -> None:
    treadle.write("secret.yaml", WORKFLOW)

    ok = treadle("run", "secret.yaml", "-p", f"token={SECRET}", code=0)
    assert ok.json() == {"said": "calling with ***"}
    assert SECRET not in ok.output

    failed = treadle("run", "secret.yaml", "-p", f"token={SECRET}", "-p", "then=reject", code=1)
    assert SECRET not in failed.output
    assert "✗ reject failed" in failed.stderr
    last = failed.stderr.splitlines()[-1]
    found = re.fullmatch(
        r"run (r-[0-9a-f]+) failed: task 'reject' failed: token \*\*\* was rejected", last
    )
    assert found, failed.stderr
    run_id = found.group(1)

    shown = treadle("runs", "show", run_id, code=0)
    assert SECRET not in shown.output
    document = shown.json()
    assert document["parameters"] == {"token": "***", "then": "reject"}
    assert document["tasks"][0]["result"] == {"message": "calling with ***"}
    assert document["tasks"][1]["error"]["message"] == "token *** was rejected"

    refused = treadle("run", "secret.yaml", "-p", f"token={SHORT_SECRET}", code=2)
    assert SHORT_SECRET not in refused.output
    assert "parameter 'token'" in refused.stderr
    assert "minLength" in refused.stderr  # which rule it breaks, without the value

    asking = treadle("run", "secret.yaml", "-p", f"token={SECRET}", "-p", "then=ask", code=3)
    assert SECRET not in asking.output
    assert "(task confirm): Really send ***?" in asking.stderr
    listed = treadle("inquiry", "list", code=0)
    assert SECRET not in listed.output
    assert listed.stdout.rstrip().endswith("task confirm: Really send ***?")
    inquiry_id = listed.stdout.split()[0]
    shown = treadle("inquiry", "show", inquiry_id, code=0)
    assert SECRET not in shown.output
    assert shown.json()["prompt"] == "Really send ***?"


KV_SECRET = "kv-hunter2-battery-staple"

KV_WORKFLOW = """\
ref: demo.kv_secret
tasks:
  - name: call
    action: core.echo
    input: {message: "password {{ kv.get_secret('db.password') }}"}
output_map:
  said: "{{ task.call.result.message }}"
"""


def test_a_keystore_secret_is_stored_encrypted_and_never_printed(treadle: Any) -> None:
    treadle("kv", "set", "db.password", KV_SECRET, "--secret", code=0)
    treadle("kv", "set", "region", "eu-west-1", code=0)
    assert KV_SECRET.encode() not in treadle.database.read_bytes()
    key_file = treadle.database.parent / ".treadle" / "secret.key"
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"

    got = treadle("kv", "get", "db.password", code=0)
    assert got.stdout.strip() == "***"
    assert "is secret" in got.stderr
    assert treadle("kv", "get", "region", code=0).json() == "eu-west-1"
    listed = treadle("kv", "list", code=0)
    assert listed.stdout.splitlines() == ["db.password = ***", 'region = "eu-west-1"']

    treadle.write("kv.yaml", KV_WORKFLOW)
    ran = treadle("run", "kv.yaml", code=0)
    assert ran.json() == {"said": "password ***"}  # the action got it; the result never shows it
    for result in (got, listed, ran):
        assert KV_SECRET not in result.output


def test_rotate_key_reencrypts_with_the_first_key_and_reports_counts(treadle: Any) -> None:
    from treadle.common.secret_box import generate_key

    old, new = generate_key(), generate_key()
    treadle.env["TREADLE_SECRET_KEY"] = old
    treadle("kv", "set", "db.password", KV_SECRET, "--secret", code=0)
    treadle.write("secret.yaml", WORKFLOW)
    treadle("run", "secret.yaml", "-p", f"token={SECRET}", code=0)
    treadle("webhooks", "create", "--name", "forge", "--event-type", "push", code=0)

    treadle.env["TREADLE_SECRET_KEY"] = f"{new},{old}"
    rotated = treadle("secrets", "rotate-key", code=0)
    assert rotated.stdout.splitlines() == [
        "keystore: 1 re-encrypted, 0 already current, 0 encrypted from plain text",
        "run secrets: 1 re-encrypted, 0 already current",
        "webhooks: 1 re-encrypted, 0 already current",
    ]
    again = treadle("secrets", "rotate-key", "--json", code=0)
    assert again.json() == {
        "keystore_rotated": 0,
        "keystore_current": 1,
        "keystore_encrypted_from_plain": 0,
        "run_secrets_rotated": 0,
        "run_secrets_current": 1,
        "webhooks_rotated": 0,
        "webhooks_current": 1,
    }
    treadle.env["TREADLE_SECRET_KEY"] = new  # the old key is no longer needed
    treadle.write("kv.yaml", KV_WORKFLOW)
    assert treadle("run", "kv.yaml", code=0).json() == {"said": "password ***"}

    treadle.env["TREADLE_SECRET_KEY"] = old  # and no longer decrypts anything
    refused = treadle("secrets", "rotate-key", code=1)
    assert "no key in TREADLE_SECRET_KEY decrypts" in refused.stderr
    assert "keystore secret 'db.password'" in refused.stderr
    failed = treadle("run", "kv.yaml", code=1)
    assert "SecretKeyError" in failed.output or "cannot decrypt" in failed.output

    treadle.env["TREADLE_SECRET_KEY"] = "not-a-key"
    bad = treadle("kv", "set", "other", "x", "--secret", code=2)
    assert "TREADLE_SECRET_KEY: key 1 of 1 is not a Fernet key" in bad.stderr
