"""Carry out ``treadle runs pause|resume|cancel|retry|compensate ID`` and report the outcome.

Embedded (the default): the control is checked and applied to the database, then this
process continues the run exactly as ``treadle inquiry respond`` does, from the top-level
run so a child's control carries its parent on, with the same progress, output and exit
codes as ``treadle run`` (a paused or pausing run exits 3, like a waiting one; a run
that ends as asked exits 0: canceled for ``cancel``, compensated for ``compensate``).
Distributed (``--distributed``, or ``--api``): the control is written through the client
(the database's, or the HTTP API's), the scheduler is woken, and the run's state right
after is printed; the services do the rest. A control that does not apply exits 2 and
changes nothing, saying why. Either way the control, or its refusal, is in the audit log
as ``run.<control>`` by ``cli:<login>`` (through the API: by the token).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from treadle.cli.progress import progress_for
from treadle.cli.support import (
    ExitCode,
    exit_code_for,
    fail,
    identity,
    load_catalog,
    print_json,
)
from treadle.common.graph import COMPENSATION_SUFFIX
from treadle.common.statuses import RunStatus, TaskStatus
from treadle.scheduler.service.controls import Control

if TYPE_CHECKING:
    from treadle.common.budget import Budget
    from treadle.common.settings import Settings
    from treadle.embedded import EmbeddedRunner

__all__ = ["apply_distributed", "apply_embedded", "budget_option", "describe", "exit_code"]


def budget_option(assignments: list[str] | None) -> Budget | None:
    """``--budget NAME=VALUE`` options as a Budget; exits 2 naming each bad one."""
    from treadle.common.budget import parse_budget
    from treadle.common.errors import ParameterError

    if not assignments:
        return None
    try:
        return parse_budget(assignments)
    except ParameterError as exc:
        fail(str(exc))


def apply_embedded(
    settings: Settings,
    run_id: str,
    control: Control,
    reason: str | None,
    *,
    as_json: bool,
    quiet: bool,
    pack_path: list[Path] | None,
    budget: Budget | None = None,
    task: str | None = None,
) -> ExitCode:
    """Apply ``control`` here, continue the run in this process, print where it stopped
    (``task``: a retry from that task)."""
    from treadle.clientlib.audit import database_principal
    from treadle.clientlib.changes import control_run
    from treadle.common.errors import NotFound, ParameterError
    from treadle.common.heap import freeze_start_up
    from treadle.embedded import EmbeddedRunner
    from treadle.scheduler.service.controls import ControlRefused, UnknownTask

    catalog = load_catalog(settings, pack_path or [])
    with EmbeddedRunner.open(settings, catalog) as runner:
        freeze_start_up()  # this process's start-up is done: common/heap.py
        by = runner.auditor(database_principal(identity()))  # cli:<login>
        why = _reason(control, reason)
        try:
            control_run(by, runner.runs, run_id, control, reason=why, budget=budget, task=task)
        except UnknownTask as exc:
            fail(str(exc))
        except NotFound:
            fail(f"no run {run_id}")
        except (ControlRefused, ParameterError) as exc:
            fail(str(exc))
        root = _root_run(runner, run_id)
        waiting = _follow(runner, root, quiet=quiet)
        document = _document(runner.store, run_id)
    if run_id != root:
        waiting = waiting and document["status"] not in _ENDED
    if as_json:
        print_json(document)
    else:
        _print_outcome(document, control, waiting=waiting)
    return exit_code(document, control, waiting=waiting)


def apply_distributed(
    run_id: str,
    control: Control,
    reason: str | None,
    *,
    as_json: bool,
    api: str | None = None,
    token: str | None = None,
    budget: Budget | None = None,
    task: str | None = None,
) -> ExitCode:
    """Write ``control`` for the scheduler to carry out, through the database or the API
    (``--api``); print the run's state right after (``task``: a retry from that task)."""
    from treadle.apiclient import ApiClient
    from treadle.cli.clients import command_client, location
    from treadle.common.errors import NotFound, ParameterError
    from treadle.scheduler.service.controls import ControlRefused, UnknownTask

    with command_client(api, token) as client:
        try:
            # The run as the control left it: a scheduler may move it on at once.
            why = _reason(control, reason)
            document = client.control_document(run_id, control, why, budget, task=task)
        except UnknownTask as exc:
            fail(str(exc))
        except NotFound as exc:  # through the API, a task the run lacks is a NotFound too
            over_api = task is not None and isinstance(client, ApiClient)
            fail(str(exc) if over_api else f"no run {run_id} in {location(client)}")
        except (ControlRefused, ParameterError) as exc:
            fail(str(exc))
    if as_json:
        print_json(document)
    else:
        typer.echo(describe(document, control))
    return ExitCode.OK


# -- reporting ------------------------------------------------------------------------------

_ENDED = frozenset(status.value for status in RunStatus if status.is_terminal)
_HOLDING = frozenset({RunStatus.PAUSING.value, RunStatus.PAUSED.value})


#: The end each control asks for: reaching it is success (exit 0), as a succeeded run is.
_ASKED_FOR = {
    Control.CANCEL: RunStatus.CANCELED,
    Control.COMPENSATE: RunStatus.COMPENSATED,
}


def exit_code(document: dict[str, Any], control: Control, *, waiting: bool) -> ExitCode:
    """0 succeeded (canceled for cancel, compensated for compensate); 3 paused, pausing or
    waiting; else 1."""
    status = RunStatus(document["status"])
    if _ASKED_FOR.get(control) is status:
        return ExitCode.OK
    if status.value in _HOLDING:
        return ExitCode.WAITING
    return exit_code_for(status, waiting=waiting)


def describe(document: dict[str, Any], control: Control) -> str:
    """One line on where the run stands after ``control``, naming what is going on."""
    run_id, status = document["id"], document["status"]
    running = _names(document, TaskStatus.RUNNING)
    if status == RunStatus.PAUSING.value:
        return (
            f"run {run_id} is pausing: {_count(running, 'running task')} "
            f"({', '.join(running)}) finish first; nothing new starts"
        )
    stopped = (document.get("budget") or {}).get("stopped")
    if status == RunStatus.PAUSED.value and stopped:
        return f"run {run_id} is paused: stopped by its budget: {stopped['message']}"
    if status == RunStatus.PAUSED.value:
        return f"run {run_id} is paused; resume it with: treadle runs resume {run_id}"
    if status == RunStatus.COMPENSATING.value:
        # running compensations are the tasks `<task>~compensate`; name the tasks undone
        undoing = [
            name.removesuffix(COMPENSATION_SUFFIX)
            for name in running
            if name.endswith(COMPENSATION_SUFFIX)
        ]
        pending = document.get("compensation_pending", [])
        then = f"; then {', '.join(pending)}" if pending else ""
        return f"run {run_id} is compensating: undoing {', '.join(undoing) or 'nothing'}{then}"
    if status == RunStatus.COMPENSATED.value:
        # in the order they were undone: the compensations' own order
        undone = [
            name.removesuffix(COMPENSATION_SUFFIX)
            for name in _names(document, TaskStatus.SUCCEEDED)
            if name.endswith(COMPENSATION_SUFFIX)
        ]
        return f"run {run_id} is compensated: undid {', '.join(undone) or 'nothing'}"
    if status in _ENDED:
        message = (document.get("error") or {}).get("message")
        return f"run {run_id} is {status}" + (f": {message}" if message else "")
    if control is Control.RETRY:
        return f"run {run_id} is {status} again: re-running {', '.join(running) or 'its tasks'}"
    return f"run {run_id} is {status}" + (f": {', '.join(running)} running" if running else "")


def _print_outcome(document: dict[str, Any], control: Control, *, waiting: bool) -> None:
    from treadle.cli.run_cmd import report_run

    status = document["status"]
    if status in _HOLDING or status == RunStatus.COMPENSATED.value:
        typer.echo(describe(document, control), err=True)
        return
    report_run(document, waiting=waiting, as_json=False)


def _names(document: dict[str, Any], status: TaskStatus) -> list[str]:
    names: list[str] = []
    for task in document["tasks"]:
        if task["status"] == status.value and task["name"] not in names:
            names.append(task["name"])
    return names


def _count(names: list[str], what: str) -> str:
    return f"{len(names)} {what}" + ("" if len(names) == 1 else "s")


# -- the embedded side ----------------------------------------------------------------------


def _reason(control: Control, reason: str | None) -> str | None:
    """The reason recorded: as given; a cancel without one names who asked for it."""
    if reason is None and control is Control.CANCEL:
        return f"canceled by {identity()['login']}"
    return reason


def _follow(runner: EmbeddedRunner, run_id: str, *, quiet: bool) -> bool:
    """Continue ``run_id`` with progress on stderr; whether it stopped waiting on people."""
    progress = progress_for(quiet=quiet)
    if progress is not None:
        progress.start(run_id, runner.state_of(run_id).workflow)
    result = None
    try:
        result = runner.follow(run_id, on_change=progress.update if progress else None)
    finally:
        if progress is not None:
            state = runner.state_of(run_id)
            # a paused run's tasks may wait on people, but it is paused first of all
            waiting = result is not None and result.waiting
            progress.finish(state, waiting=waiting and state.status.value not in _HOLDING)
    return result.waiting


def _root_run(runner: EmbeddedRunner, run_id: str) -> str:
    """The top-level run above ``run_id``: following it moves its child runs too."""
    state = runner.runs.load(run_id)
    while state.context.parent_run_id is not None:
        state = runner.runs.load(state.context.parent_run_id)
    return state.run_id


def _document(store: Any, run_id: str) -> dict[str, Any]:
    from treadle.scheduler.service.run_document import stored_run_document

    with store.snapshot() as uow:
        return stored_run_document(uow, run_id)
