"""The ``faults`` pack: actions that misbehave on purpose, written to a folder for the tests.

A sleeper that sleeps only on its first attempt, an action that SIGKILLs its own worker
process, a module that does not import, a result that is not JSON, a result over the
payload limit, and the workflows that use them (one holding a concurrency key's only slot).
"""

from __future__ import annotations

import textwrap
from pathlib import Path

#: The payload limit of the deployments (bytes of JSON an action may return).
PAYLOAD_LIMIT = 4096

PACK_FILES = {
    "pack.yaml": """
        ref: faults
        version: "1.0.0"
        description: Actions and workflows that misbehave, for the fault-injection tests.
    """,
    "actions/work.yaml": """
        name: work
        description: Sleeps the given seconds, then returns its tag.
        runner_type: python
        entry_point: actions.py:work
        parameters:
          seconds: {type: number, default: 0}
          tag: {type: string, required: true}
    """,
    "actions/nap_once.yaml": """
        name: nap_once
        description: >-
          On its first attempt (no marker file yet) creates the marker and sleeps; on any
          later attempt returns at once.
        runner_type: python
        entry_point: actions.py:nap_once
        parameters:
          marker: {type: string, required: true}
          seconds: {type: number, required: true}
    """,
    "actions/kill_worker.yaml": """
        name: kill_worker
        description: Kills the worker process running it, every time.
        runner_type: python
        entry_point: actions.py:kill_worker
    """,
    "actions/broken.yaml": """
        name: broken
        description: Its module does not import.
        runner_type: python
        entry_point: broken.py:run
    """,
    "actions/not_json.yaml": """
        name: not_json
        description: Returns a datetime, which JSON cannot hold.
        runner_type: python
        entry_point: actions.py:not_json
    """,
    "actions/too_big.yaml": """
        name: too_big
        description: Returns a string of the given size.
        runner_type: python
        entry_point: actions.py:too_big
        parameters:
          size: {type: integer, required: true}
    """,
    "actions/actions.py": """
        import datetime
        import os
        import signal
        import time


        def work(tag, seconds=0):
            if seconds:
                time.sleep(seconds)
            return {"tag": tag}


        def nap_once(marker, seconds):
            if os.path.exists(marker):
                return {"napped": False}
            open(marker, "w").close()
            time.sleep(seconds)
            return {"napped": True}


        def kill_worker():
            os.kill(os.getpid(), signal.SIGKILL)


        def not_json():
            return {"when": datetime.datetime(2024, 1, 1, 12, 0)}


        def too_big(size):
            return {"blob": "x" * size}
    """,
    "actions/broken.py": """
        import treadle_faults_no_such_module  # noqa: F401  (the point: this fails)


        def run():
            return {}
    """,
    "workflows/nap.yaml": """
        ref: faults.nap
        parameters:
          seconds: {type: number, default: 2}
        tasks:
          - name: nap
            action: faults.work
            input:
              seconds: "{{ parameters.seconds }}"
              tag: napped
        output_map:
          tag: "{{ task.nap.result.tag }}"
    """,
    "workflows/keyed_nap.yaml": """
        ref: faults.keyed_nap
        parameters:
          customer: {type: string, required: true}
          marker: {type: string, required: true}
          seconds: {type: number, default: 30}
        tasks:
          - name: nap
            action: faults.nap_once
            concurrency_key: {key: "customer-{{ parameters.customer }}", limit: 1}
            input:
              marker: "{{ parameters.marker }}"
              seconds: "{{ parameters.seconds }}"
    """,
    "workflows/chain.yaml": """
        ref: faults.chain
        parameters:
          pause: {type: number, default: 0}
        tasks:
""",
    "workflows/fan_out.yaml": """
        ref: faults.fan_out
        parameters:
          count: {type: integer, default: 50}
          pause: {type: number, default: 0}
        tasks:
          - name: each
            action: faults.work
            with_items: "{{ range(parameters.count) | list }}"
            input:
              seconds: "{{ parameters.pause }}"
              tag: "item {{ item }}"
        output_map:
          tags: "{{ task.each.results | map(attribute='tag') | list }}"
    """,
    "workflows/timeout_retry.yaml": """
        ref: faults.timeout_retry
        parameters:
          marker: {type: string, required: true}
        tasks:
          - name: slow
            action: faults.nap_once
            timeout: 1
            retry:
              count: 2
              delay: 0
            input:
              marker: "{{ parameters.marker }}"
              seconds: 10
        output_map:
          napped: "{{ task.slow.result.napped }}"
    """,
    "workflows/killer.yaml": """
        ref: faults.killer
        tasks:
          - name: crash
            action: faults.kill_worker
            retry:
              count: 2
              delay: 0
            next:
              - when: "{{ failed() }}"
                do: [recover]
          - name: recover
            action: core.echo
            input:
              message: "recovered from {{ task.crash.error.type }}"
        output_map:
          recovered: "{{ task.recover.result.message }}"
    """,
    "workflows/bad_actions.yaml": f"""
        ref: faults.bad_actions
        tasks:
          - name: normal
            action: core.echo
            input:
              message: all well
          - name: broken
            action: faults.broken
            next:
              - when: "{{{{ failed() }}}}"
                do: [note_broken]
          - name: not_json
            action: faults.not_json
            next:
              - when: "{{{{ failed() }}}}"
                do: [note_not_json]
          - name: too_big
            action: faults.too_big
            input:
              size: {PAYLOAD_LIMIT * 2}
            next:
              - when: "{{{{ failed() }}}}"
                do: [note_too_big]
          - name: note_broken
            action: core.echo
            input:
              message: "{{{{ task.broken.error.type }}}}"
          - name: note_not_json
            action: core.echo
            input:
              message: "{{{{ task.not_json.error.type }}}}"
          - name: note_too_big
            action: core.echo
            input:
              message: "{{{{ task.too_big.error.type }}}}"
        output_map:
          normal: "{{{{ task.normal.result.message }}}}"
          handled:
            - "{{{{ task.note_broken.result.message }}}}"
            - "{{{{ task.note_not_json.result.message }}}}"
            - "{{{{ task.note_too_big.result.message }}}}"
    """,
}

#: Steps of ``faults.chain``.
CHAIN_STEPS = [f"s{n}" for n in range(1, 11)]


def _chain_tasks() -> str:
    lines = []
    for index, step in enumerate(CHAIN_STEPS):
        lines += [
            f"  - name: {step}",
            "    action: faults.work",
            "    input:",
            '      seconds: "{{ parameters.pause }}"',
            f"      tag: {step}",
        ]
        if index + 1 < len(CHAIN_STEPS):
            lines.append(f"    on_success: {CHAIN_STEPS[index + 1]}")
    lines += ["output_map:", f'  last: "{{{{ task.{CHAIN_STEPS[-1]}.result.tag }}}}"']
    return "\n".join(lines) + "\n"


def write_faults_pack(folder: Path) -> Path:
    """The ``faults`` pack under ``folder`` (a folder of packs); returns ``folder``."""
    for name, body in PACK_FILES.items():
        path = folder / "faults" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        content = textwrap.dedent(body).lstrip()
        if name == "workflows/chain.yaml":
            content += _chain_tasks()
        path.write_text(content, encoding="utf-8")
    return folder
