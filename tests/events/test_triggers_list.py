"""An event trigger listed beside schedules (``triggers:``) starts runs as a lone one does."""

from __future__ import annotations

import textwrap
from typing import Any

from treadle.common.loader import load_workflow_text

Embedded = Any  # the ``embedded`` fixture (tests/events/conftest.py)

LISTED = """\
ref: eventtest.listed
parameters:
  contact_id: {type: string, required: true}
triggers:
  - type: cron
    cron: "0 3 * * *"
  - type: event
    event_type: contact.created
    parameters:
      contact_id: "{{ event.data.contact_id }}"
tasks:
  - name: research
    action: core.echo
    input:
      message: "{{ parameters.contact_id }}"
output_map:
  said: "{{ task.research.result.message }}"
"""


def test_an_event_trigger_in_a_list_of_triggers_starts_a_run(embedded: Embedded) -> None:
    spec = load_workflow_text(textwrap.dedent(LISTED), "listed.yaml")
    embedded.runner.definitions.publish(spec, at=embedded.runner.clock())

    outcome = embedded.send("contact.created", data={"contact_id": "c-7"}, event_id="evt_l")

    [run_id] = outcome.started_runs
    assert embedded.document(run_id)["output"] == {"said": "c-7"}
