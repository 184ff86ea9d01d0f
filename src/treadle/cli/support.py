"""What every command needs: settings, packs, workflow targets, parameters, exit codes.

Exit codes are part of the CLI's contract (``docs/cli.md``): 0 succeeded; 1 failed, timed
out or canceled; 2 invalid definition, parameters or usage (nothing was started); 3 stopped
waiting on an inquiry or an event, or paused.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from enum import IntEnum
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import typer
import yaml

import treadle
from treadle.common.errors import ConfigurationError, ParameterError
from treadle.common.source import Issue, Severity
from treadle.common.statuses import RunStatus

if TYPE_CHECKING:  # kept out of start-up: the CLI imports these lazily
    from treadle.common.catalog import Catalog
    from treadle.common.graph import Graph
    from treadle.common.settings import Settings
    from treadle.common.spec import WorkflowSpec


class ExitCode(IntEnum):
    """The process exit codes of ``treadle`` commands."""

    OK = 0
    FAILED = 1
    INVALID = 2
    WAITING = 3


def exit_code_for(status: RunStatus, *, waiting: bool = False) -> ExitCode:
    if status is RunStatus.SUCCEEDED:
        return ExitCode.OK
    if status.is_terminal:
        return ExitCode.FAILED
    if status in (RunStatus.PAUSING, RunStatus.PAUSED):
        return ExitCode.WAITING  # paused by an operator: it goes on when resumed
    return ExitCode.WAITING if waiting else ExitCode.FAILED


def fail(message: str, code: ExitCode = ExitCode.INVALID) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(int(code))


def refused(workflow: str, exc: ParameterError) -> NoReturn:
    """A start refused for its input: each bad parameter, or the sandbox's violations."""
    from treadle.common.sandbox_report import SandboxRefusal

    if isinstance(exc, SandboxRefusal):
        fail("\n  ".join([f"the sandbox policy refused the run of {workflow}:", *exc.problems]))
    fail("\n  ".join([f"invalid parameters for {workflow}:", *exc.problems]))


@contextmanager
def service_start_up(log: Any, stop: Any, received: Sequence[str]) -> Iterator[None]:
    """Around a service's start-up (connecting, retrying): a database or broker that stays
    unreachable is exit 1 (exit 0 if a signal in ``received`` set ``stop`` meanwhile),
    invalid configuration exit 2 with its message."""
    from treadle.common.errors import ServiceUnavailable

    try:
        yield
    except ServiceUnavailable as exc:
        if stop.is_set():
            log.info("stopped (%s) before start-up finished", ", ".join(received))
            raise typer.Exit(int(ExitCode.OK)) from None
        log.error("cannot start: %s", exc)
        raise typer.Exit(int(ExitCode.FAILED)) from None
    except ConfigurationError as exc:
        fail(str(exc))


def load_settings() -> Settings:
    from treadle.common.settings import settings_from_environment

    try:
        return settings_from_environment()
    except ConfigurationError as exc:
        fail(str(exc))


def shipped_packs() -> Path:
    return Path(treadle.__file__).parent / "packs"


def load_catalog(settings: Settings, extra: Sequence[Path]) -> Catalog:
    """The shipped packs, then ``TREADLE_PACK_PATHS``, then ``--pack-path`` folders."""
    from treadle.common.loader import load_packs

    paths = [shipped_packs(), *(Path(p) for p in settings.pack_paths), *extra]
    for path in paths[1:]:
        if not path.exists():
            fail(f"pack path {path} does not exist")
    catalog = load_packs(paths)
    for issue in catalog.issues:
        typer.echo(
            f"{issue} (that file is skipped)" if issue.severity is Severity.ERROR else str(issue),
            err=True,
        )
    return catalog


def resolve_target(target: str, catalog: Catalog) -> WorkflowSpec:
    """A workflow file path, or the ref of a workflow in the loaded packs.

    A file that does not load is reported as ``treadle validate`` would: the loader's
    errors together with what validating the rest of the file finds, in file order.
    """
    from treadle.common.loader import read_workflow_file

    path = Path(target)
    if path.is_file():
        spec, issues = read_workflow_file(str(path))
        if spec is not None and not any(i.severity is Severity.ERROR for i in issues):
            return spec
        if spec is not None:
            from treadle.common.validate import validate_workflow

            issues = [*issues, *validate_workflow(spec, catalog)]
        unique = dict.fromkeys(issues)
        print_issues(sorted(unique, key=lambda i: (i.loc.file, i.loc.line, i.loc.col, i.message)))
        raise typer.Exit(int(ExitCode.INVALID))
    if target in catalog.workflows:
        return catalog.workflows[target]
    from difflib import get_close_matches

    close = get_close_matches(target, list(catalog.workflows), n=3)
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    fail(
        f"'{target}' is neither a workflow file nor the ref of a workflow in the loaded packs{hint}"
    )


def check_definition(spec: WorkflowSpec, catalog: Catalog) -> Graph | None:
    """Validate before starting; print every problem and exit 2 if there is an error.

    Returns the graph validation compiled, for the start to publish as it is.
    """
    from treadle.common.validate import checked_workflow

    issues, graph = checked_workflow(spec, catalog)
    errors = [i for i in issues if i.severity is Severity.ERROR]
    print_issues(issues)
    if errors:
        raise typer.Exit(int(ExitCode.INVALID))
    return graph


def print_issues(issues: Iterable[Issue]) -> None:
    """Definition problems go to stderr, one ``path:line:col: message`` per line."""
    for issue in issues:
        typer.echo(str(issue), err=True)


def parse_parameters(pairs: Sequence[str], params_file: Path | None) -> dict[str, Any]:
    """``--params-file`` (JSON or YAML mapping) overlaid with ``-p KEY=VALUE`` pairs.

    A value that parses as JSON is taken as JSON (``-p n=3`` is the number 3,
    ``-p tags='["a"]'`` a list); anything else is the string as written.
    """
    parameters: dict[str, Any] = {}
    if params_file is not None:
        try:
            loaded = yaml.safe_load(params_file.read_text(encoding="utf-8"))
        except (OSError, yaml.YAMLError) as exc:
            fail(f"cannot read parameters from {params_file}: {exc}")
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, Mapping):
            fail(f"{params_file} must hold a mapping of parameter names to values")
        parameters.update(loaded)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            fail(f"-p expects KEY=VALUE, got {pair!r}")
        try:
            parameters[key] = json.loads(raw)
        except ValueError:
            parameters[key] = raw
    return parameters


def identity() -> dict[str, Any]:
    from treadle.common.settings import os_login

    return {"login": os_login(), "via": "cli"}


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


@contextmanager
def command_database(distributed: bool) -> Iterator[Any]:
    """The store of TREADLE_DATABASE_URL for a command that reads or writes it.

    With ``distributed`` it is opened as a client of the services (bounded connect time,
    no migration); else as the embedded mode opens it (bringing its schema up to date). A
    database that cannot be reached is a clear message and exit 1, a bad URL exit 2.
    """
    from treadle.clientlib.connection import open_client_store, reaching
    from treadle.common.errors import ServiceUnavailable
    from treadle.scheduler.store import Store

    settings = load_settings()
    try:
        store = (
            open_client_store(settings.database_url, 5.0)
            if distributed
            else Store.open(settings.database_url)
        )
    except (ConfigurationError, ServiceUnavailable) as exc:
        fail(str(exc), ExitCode.FAILED if isinstance(exc, ServiceUnavailable) else ExitCode.INVALID)
    store.lifecycle_events = settings.lifecycle_events  # what it changes writes its events
    store.run_change_notices = settings.run_change_notices
    store.prepared_statements = settings.prepared_statements
    try:
        with reaching(store):
            yield store
    except ServiceUnavailable as exc:
        fail(str(exc), ExitCode.FAILED)
    finally:
        store.close()
