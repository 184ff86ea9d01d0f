"""The ``lifecycle`` pack the lifecycle tests run: actions that leave traces a test can read.

Each action appends a line to a log file when it starts and ends (``step``; given a
``gate`` file it waits for that file between the two, so a test decides when it ends), an
item fails while a marker file exists (``item``: delete the file and a retry succeeds), a
compensation records what it undoes and fails when told to (``undo``), and ``slow_write``
records its process id, sleeps, then writes a file (a terminated attempt never writes it).
:func:`write_pack` writes it to a folder of packs; :func:`read_log` reads what it logged.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

PACK_FILES = {
    "pack.yaml": """
        ref: lifecycle
        version: "1.0.0"
        description: Actions that leave traces, for the lifecycle tests.
    """,
    "actions/step.yaml": """
        name: step
        description: >-
          Logs "start NAME", sleeps, waits until the file GATE exists (if given), logs
          "end NAME"; returns the name.
        runner_type: python
        entry_point: actions.py:step
        parameters:
          name: {type: string, required: true}
          log: {type: string, required: true}
          seconds: {type: number, default: 0}
          gate: {type: string, default: ""}
    """,
    "actions/item.yaml": """
        name: item
        description: Logs "item N"; fails for N = 2 while the file BROKEN exists; returns N * 10.
        runner_type: python
        entry_point: actions.py:item
        parameters:
          n: {type: integer, required: true}
          log: {type: string, required: true}
          broken: {type: string, required: true}
    """,
    "actions/undo.yaml": """
        name: undo
        description: Logs "undo WHAT"; fails when WHAT equals FAIL_ON.
        runner_type: python
        entry_point: actions.py:undo
        parameters:
          what: {type: string, required: true}
          log: {type: string, required: true}
          fail_on: {type: string, default: ""}
    """,
    "actions/slow_write.yaml": """
        name: slow_write
        description: Writes its pid to PATH.pid, sleeps, then writes PATH.
        runner_type: python
        entry_point: actions.py:slow_write
        parameters:
          path: {type: string, required: true}
          seconds: {type: number, default: 3}
    """,
    "actions/actions.py": """
        import os
        import time


        def _log(log, line):
            with open(log, "a", encoding="utf-8") as handle:
                handle.write(line + "\\n")


        def step(name, log, seconds=0, gate=""):
            _log(log, f"start {name}")
            if seconds:
                time.sleep(seconds)
            deadline = time.monotonic() + 60
            while gate and not os.path.exists(gate):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{gate} did not appear within 60 s")
                time.sleep(0.01)
            _log(log, f"end {name}")
            return {"name": name}


        def item(n, log, broken):
            _log(log, f"item {n}")
            if n == 2 and os.path.exists(broken):
                raise RuntimeError(f"item {n} is broken")
            return n * 10


        def undo(what, log, fail_on=""):
            _log(log, f"undo {what}")
            if what == fail_on:
                raise RuntimeError(f"cannot undo {what}")
            return {"undone": what}


        def slow_write(path, seconds=3):
            with open(path + ".pid", "w", encoding="utf-8") as handle:
                handle.write(str(os.getpid()))
            time.sleep(seconds)
            with open(path, "w", encoding="utf-8") as handle:
                handle.write("written")
            return {"written": path}
    """,
    "workflows/steps.yaml": """
        ref: lifecycle.steps
        parameters:
          log: {type: string, required: true}
          seconds: {type: number, default: 0}
          gate: {type: string, default: ""}
        tasks:
          - name: first
            action: lifecycle.step
            input:
              name: first
              log: "{{ parameters.log }}"
              seconds: "{{ parameters.seconds }}"
              gate: "{{ parameters.gate }}"
            next: [{when: "{{ succeeded() }}", do: [second]}]
          - name: second
            action: lifecycle.step
            input: {name: second, log: "{{ parameters.log }}"}
            next: [{when: "{{ succeeded() }}", do: [third]}]
          - name: third
            action: lifecycle.step
            input: {name: third, log: "{{ parameters.log }}"}
        output_map:
          last: "{{ task.third.result.name }}"
    """,
    "workflows/parent.yaml": """
        ref: lifecycle.parent
        parameters:
          log: {type: string, required: true}
          seconds: {type: number, default: 0}
          gate: {type: string, default: ""}
        tasks:
          - name: call
            action: lifecycle.steps
            input:
              log: "{{ parameters.log }}"
              seconds: "{{ parameters.seconds }}"
              gate: "{{ parameters.gate }}"
            next: [{when: "{{ succeeded() }}", do: [after]}]
          - name: after
            action: lifecycle.step
            input: {name: after, log: "{{ parameters.log }}"}
        output_map:
          child: "{{ task.call.result }}"
    """,
    "workflows/items.yaml": """
        ref: lifecycle.items
        parameters:
          log: {type: string, required: true}
          broken: {type: string, required: true}
        tasks:
          - name: prepare
            action: lifecycle.step
            input: {name: prepare, log: "{{ parameters.log }}"}
            next:
              - when: "{{ succeeded() }}"
                publish: [{token: "{{ task.prepare.result.name }}-{{ uuid() }}"}]
                do: [each]
          - name: each
            action: lifecycle.item
            with_items: [1, 2, 3]
            input: {n: "{{ item }}", log: "{{ parameters.log }}", broken: "{{ parameters.broken }}"}
        output_map:
          token: "{{ vars.token }}"
          results: "{{ task.each.results }}"
    """,
    "workflows/shop.yaml": """
        ref: lifecycle.shop
        parameters:
          log: {type: string, required: true}
          fail_undo: {type: string, default: ""}
        tasks:
          - name: reserve
            action: lifecycle.step
            input: {name: reserve, log: "{{ parameters.log }}"}
            compensate:
              action: lifecycle.undo
              input:
                what: "reserve {{ task.reserve.result.name }}"
                log: "{{ parameters.log }}"
                fail_on: "{{ parameters.fail_undo }}"
            next: [{when: "{{ succeeded() }}", do: [charge]}]
          - name: charge
            action: lifecycle.step
            with_items: [1, 2]
            input: {name: "charge {{ item }}", log: "{{ parameters.log }}"}
            compensate:
              action: lifecycle.undo
              input:
                what: "charge {{ item }}"
                log: "{{ parameters.log }}"
                fail_on: "{{ parameters.fail_undo }}"
            next: [{when: "{{ succeeded() }}", do: [ship]}]
          - name: ship
            action: core.fail
            input: {message: the truck broke down}
    """,
    "workflows/waiting_parent.yaml": """
        ref: lifecycle.waiting_parent
        description: Waits on a person, on a child run that waits on one, and on an event.
        tasks:
          - name: approve
            action: core.ask
            input: {prompt: "Ship it?"}
          - name: call
            action: lifecycle.waiting_child
          - name: later
            action: core.noop
            wait_for: {event: {type: lifecycle.never}, timeout: 600}
    """,
    "workflows/waiting_child.yaml": """
        ref: lifecycle.waiting_child
        tasks:
          - name: confirm
            action: core.ask
            input: {prompt: "Really?"}
    """,
    "workflows/slow.yaml": """
        ref: lifecycle.slow
        parameters:
          path: {type: string, required: true}
          seconds: {type: number, default: 3}
        tasks:
          - name: write
            action: lifecycle.slow_write
            input: {path: "{{ parameters.path }}", seconds: "{{ parameters.seconds }}"}
    """,
}


def write_pack(folder: Path) -> Path:
    """The ``lifecycle`` pack under ``folder`` (a folder of packs); returns ``folder``."""
    for name, body in PACK_FILES.items():
        path = folder / "lifecycle" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(body).lstrip(), encoding="utf-8")
    return folder


def read_log(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
