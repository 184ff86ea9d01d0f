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
