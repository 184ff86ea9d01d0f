"""``treadle runs ...``: list, show and watch runs; pause, resume, cancel, retry, compensate.

Reading commands work on whatever TREADLE_DATABASE_URL holds. The controls are checked
against the run's status first (a control that does not apply exits 2 and changes
nothing), then applied: in this process by default, which then continues the run as
``treadle run`` does (progress, result, exit codes; a paused run exits 3); or with
``--distributed`` only written to the database for ``treadle scheduler`` to carry out.
With ``--api URL`` (or ``TREADLE_API_URL``) ``list``, ``show`` and the controls go through
the HTTP API instead of the database (controls then as with ``--distributed``), printing
the same. See ``docs/lifecycle.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from treadle.cli.clients import ApiOption, TokenOption
from treadle.cli.support import fail, load_settings, print_json

runs_app = typer.Typer(help="List, inspect, watch and control runs.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    from treadle.cli import runs_why_cmd

    runs_why_cmd.register(runs_app)
    app.add_typer(runs_app, name="runs")


@runs_app.command("list")
def list_runs(
    status: Annotated[str | None, typer.Option(help="Only runs with this status.")] = None,
    workflow: Annotated[str | None, typer.Option(help="Only runs of this workflow ref.")] = None,
    parent: Annotated[str | None, typer.Option(help="Only child runs of this run.")] = None,
    since: Annotated[
        str | None, typer.Option(help="Only runs created at or after this ISO time (UTC).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Only runs created before this ISO time (UTC).")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="How many, newest first.")] = 50,
    cursor: Annotated[
        str | None,
        typer.Option(help="Continue after the previous page: the cursor it printed on stderr."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json")] = False,
    api: ApiOption = None,
    token: TokenOption = None,
) -> None:
    """The newest runs, one per line: id, status, workflow, created.

    When more runs match, the last line on stderr is `next page: --cursor C`; pass it (with
    the same filters) for the page after. Pages hold every matching run once, newest first,
    even while runs start meanwhile.
    """
    from treadle.cli.clients import command_client, upgrade_database
    from treadle.common.errors import ParameterError
    from treadle.common.statuses import RunStatus
    from treadle.scheduler.core.namespaces import iso

    try:
        wanted = RunStatus(status) if status else None
    except ValueError:
        fail(f"unknown status {status!r}; one of {', '.join(s.value for s in RunStatus)}")
    after, before = _moment("--since", since), _moment("--until", until)
    with command_client(api, token, prepare=upgrade_database) as client:
        try:
            page = client.list_runs(
                status=wanted,
                workflow=workflow,
                parent=parent,
                created_after=after,
                created_before=before,
                limit=limit,
                cursor=cursor,
            )
        except ParameterError as exc:
            fail(str(exc))
    if as_json:
        print_json(
            [
                {
                    "id": s.id,
                    "workflow": s.workflow,
                    "status": s.status.value,
                    "created_at": iso(s.created_at),
                    "finished_at": iso(s.finished_at),
                    "parent_run": s.parent_run_id,
                }
                for s in page.runs
            ]
        )
    else:
        for s in page.runs:
            typer.echo(f"{s.id}  {s.status.value:<10}  {s.workflow:<40}  {iso(s.created_at)}")
    if page.next_cursor is not None:
        typer.echo(f"next page: --cursor {page.next_cursor}", err=True)


def _moment(option: str, value: str | None) -> datetime | None:
    """An ISO time given on the command line, UTC unless it names its offset."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        fail(f"{option} {value!r} is not an ISO time such as 2026-01-31T12:00:00Z")
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@runs_app.command("show")
def show_run(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    as_json: Annotated[bool, typer.Option("--json", help="The run document as JSON.")] = True,
    format_: Annotated[
        str,
        typer.Option(
            "--format",
            help="treadle (the run document), or workflows-v1 or aos: the run in that "
            "dialect's shape, as `treadle runs render` prints it.",
        ),
    ] = "treadle",
    items: Annotated[
        str | None,
        typer.Option(
            "--items",
            metavar="TASK",
            help="Instead of the run document, a page of TASK's items (its latest "
            "execution): {run, task, execution, items, next_cursor}.",
        ),
    ] = None,
    attempts: Annotated[
        str | None,
        typer.Option(
            "--attempts",
            metavar="TASK",
            help="Instead of the run document, a page of TASK's attempts, each with the "
            "input it was dispatched with and what its action printed (stdout, stderr): "
            "{run, task, attempts, next_cursor}.",
        ),
    ] = None,
    cursor: Annotated[
        str | None,
        typer.Option(
            help="With --items or --attempts: the page after this one (a next_cursor printed)."
        ),
    ] = None,
    limit: Annotated[
        int,
        typer.Option(
            min=1,
            max=1000,
            help="With --items: items per page; with --attempts: attempts (at most 100).",
        ),
    ] = 100,
    all_items: Annotated[
        bool,
        typer.Option("--all-items", help="The run document with every with_items task's items."),
    ] = False,
    api: ApiOption = None,
    token: TokenOption = None,
) -> None:
    """The run document of one run (JSON), or the run in another dialect's shape.

    with_items tasks are summarised (counts by status, the first failures); `--items TASK`
    pages through TASK's items (`--cursor` from the page before), `--all-items` lists all.
    `--attempts TASK` pages through TASK's attempts with their input and captured output.
    """
    from treadle.cli.clients import api_url, command_client, upgrade_database

    if format_ != "treadle":
        from treadle.cli.runs_dialects_cmd import FORMATS, render_run

        if api_url(api):
            fail("--format applies only without --api (the API serves the run document)")

        if format_ not in FORMATS:
            fail(f"unknown format {format_!r}: use treadle, {' or '.join(FORMATS)}")
        render_run(run_id, format_)
        return
    from treadle.common.errors import NotFound, ParameterError

    if items is not None and attempts is not None:
        fail("give --items or --attempts, not both")
    if attempts is not None:
        from treadle.scheduler.service.attempt_views import MAX_ATTEMPT_PAGE

        if limit > MAX_ATTEMPT_PAGE:
            fail(f"--limit with --attempts is at most {MAX_ATTEMPT_PAGE}")
    with command_client(api, token, prepare=upgrade_database) as client:
        try:
            if items is not None:
                document = client.items_document(run_id, items, cursor=cursor, limit=limit)
            elif attempts is not None:
                document = client.attempts_document(run_id, attempts, cursor=cursor, limit=limit)
            else:
                document = client.get_document(run_id, items=all_items)
        except NotFound as exc:
            fail(f"no run {run_id}" if str(exc) == f"run {run_id} not found" else str(exc))
        except ParameterError as exc:
            fail(str(exc))
    print_json(document)


# -- lifecycle controls ----------------------------------------------------------------------

ReasonOption = Annotated[
    str | None,
    typer.Option(
        "--reason",
        help="Why (kept in the run's event log; a cancel's reason is the run's error).",
        show_default=False,
    ),
]
DistributedOption = Annotated[
    bool,
    typer.Option(
        "--distributed",
        help="Apply it in TREADLE_DATABASE_URL for `treadle scheduler` to carry out, print "
        "the run's state and return, instead of continuing the run in this process.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the run document as JSON.")]
QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="No progress on stderr.")]
PackPathOption = Annotated[
    list[Path] | None,
    typer.Option("--pack-path", help="Another folder of packs (repeatable).", show_default=False),
]
RunIdArgument = Annotated[str, typer.Argument(help="The run's id.", show_default=False)]
BudgetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--budget",
        help="A new limit of the run's budget, set before it resumes: NAME=VALUE, NAME one of "
        "cost_usd, wall_time, attempts, items, soft_ratio, step_cost_usd (repeatable); "
        "e.g. --budget cost_usd=50.",
        show_default=False,
    ),
]


#: Each control's command help (the first line is the summary `treadle runs --help` shows).
_CONTROL_HELP: dict[str, str] = {
    "pause": """Pause a running run (and its child runs): nothing new starts; running tasks finish.

    Exit 3 once it is paused (or still pausing while tasks finish elsewhere).
    """,
    "resume": "Resume a paused run exactly where it stopped, and continue it.",
    "cancel": """Cancel a run: revoke running tasks, close timers and inquiries, cancel child runs.

    Exit 0 once it is canceled.
    """,
    "retry": """Re-run the failed and not-yet-run tasks of an ended run; succeeded work is kept.

    --task NAME re-runs only that failed task, then the flow goes on from it.
    """,
    "compensate": """Undo a run's completed tasks with their `compensate` actions, newest first.

    A run still going is cancelled first. Exit 0 once it is compensated.
    """,
}


def _control_command(name: str) -> Callable[..., None]:
    """The ``treadle runs NAME ID`` command of one lifecycle control."""

    def command(
        run_id: RunIdArgument,
        reason: ReasonOption = None,
        distributed: DistributedOption = False,
        as_json: JsonOption = False,
        quiet: QuietOption = False,
        pack_path: PackPathOption = None,
        api: ApiOption = None,
        token: TokenOption = None,
    ) -> None:
        _control(name, run_id, reason, distributed, as_json, quiet, pack_path, api, token)

    command.__name__ = f"{name}_run"
    command.__doc__ = _CONTROL_HELP[name]
    return command


def resume_run(
    run_id: RunIdArgument,
    reason: ReasonOption = None,
    budget: BudgetOption = None,
    distributed: DistributedOption = False,
    as_json: JsonOption = False,
    quiet: QuietOption = False,
    pack_path: PackPathOption = None,
    api: ApiOption = None,
    token: TokenOption = None,
) -> None:
    """Resume a paused run exactly where it stopped, and continue it.

    A run its budget stopped needs a higher limit of what it reached: --budget cost_usd=50.
    """
    _control("resume", run_id, reason, distributed, as_json, quiet, pack_path, api, token, budget)


TaskOption = Annotated[
    str | None,
    typer.Option(
        "--task",
        help="Retry from this task only: its latest execution (failed, timed out or canceled) "
        "runs again and the flow goes on from it.",
        show_default=False,
    ),
]


def retry_run(
    run_id: RunIdArgument,
    reason: ReasonOption = None,
    task: TaskOption = None,
    distributed: DistributedOption = False,
    as_json: JsonOption = False,
    quiet: QuietOption = False,
    pack_path: PackPathOption = None,
    api: ApiOption = None,
    token: TokenOption = None,
) -> None:
    _control("retry", run_id, reason, distributed, as_json, quiet, pack_path, api, token, task=task)


retry_run.__doc__ = _CONTROL_HELP["retry"]
_OWN_COMMANDS: dict[str, Callable[..., None]] = {"resume": resume_run, "retry": retry_run}
for _name in _CONTROL_HELP:
    command = _OWN_COMMANDS.get(_name) or _control_command(_name)
    runs_app.command(_name)(command)


def _control(
    name: str,
    run_id: str,
    reason: str | None,
    distributed: bool,
    as_json: bool,
    quiet: bool,
    pack_path: list[Path] | None,
    api: str | None,
    token: str | None,
    budget: list[str] | None = None,
    task: str | None = None,
) -> None:
    from treadle.cli.clients import api_url
    from treadle.cli.controls import apply_distributed, apply_embedded, budget_option
    from treadle.scheduler.service.controls import Control

    control = Control(name)
    limits = budget_option(budget)
    settings = load_settings()
    if distributed or api_url(api):
        code = apply_distributed(
            run_id,
            control,
            reason,
            as_json=as_json,
            api=api,
            token=token,
            budget=limits,
            task=task,
        )
    else:
        code = apply_embedded(
            settings,
            run_id,
            control,
            reason,
            as_json=as_json,
            quiet=quiet,
            pack_path=pack_path,
            budget=limits,
            task=task,
        )
    raise typer.Exit(int(code))


@runs_app.command("watch")
def watch_run(
    run_id: RunIdArgument,
    distributed: Annotated[
        bool,
        typer.Option(
            "--distributed",
            help="Read TREADLE_DATABASE_URL as a client does (bounded connection time, no "
            "schema changes); the services move the run.",
        ),
    ] = False,
    interval: Annotated[
        float, typer.Option("--interval", min=0.05, help="Seconds between looks, at most.")
    ] = 0.5,
) -> None:
    """Show a run live as a tree (tasks, items, parallel blocks, child runs) until it ends.

    On a terminal the tree is redrawn in place; otherwise one line per change. Ctrl-C stops
    watching (the run goes on). Exit codes as `treadle run`: 0 succeeded, 1 otherwise.
    """
    from treadle.cli.watch import watch_command

    raise typer.Exit(int(watch_command(run_id, distributed, interval)))
