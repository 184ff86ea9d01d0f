"""``treadle ... --api URL``: the commands through a real ``treadle api``, with no database.

A ``treadle api`` process serves a SQLite database. Each command runs twice: as an
operator with the database would (``TREADLE_DATABASE_URL``), and as one without it, with
``--api URL`` (or ``TREADLE_API_URL``) and ``TREADLE_API_TOKEN`` only, in a folder of its
own. Both must print the same (run ids aside where each changes a run of its own), and the
operator's side never touches a database: no ``.treadle`` folder appears where it runs.
"""

from __future__ import annotations

import re
import textwrap
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from treadle.client import Client
from treadle.common.loader import load_packs, load_workflow_text
from treadle.common.settings import Settings
from treadle.embedded import EmbeddedRunner
from treadle.scheduler.store import Store
from treadle.testing.cli import CliResult, TreadleCli
from treadle.testing.processes import (
    ServiceProcess,
    treadle_environment,
    wait_until_serving,
)
from treadle.testing.redis_server import free_port

pytestmark = pytest.mark.slow

PACKS = Path(__file__).resolve().parents[2] / "packs"

#: Stays running (nobody runs its items): what the reads and controls work on.
FAN_OUT = """\
ref: ops.fan_out
parameters:
  name: {type: string, required: true}
  password: {type: string, secret: true, default: "hunter2-secret"}
tasks:
  - name: each
    action: core.noop
    with_items: [a, b, c, d, e]
    input: {value: "{{ item }} for {{ parameters.name }}"}
"""

#: Waits on a person at once.
ASK = """\
ref: ops.ask
tasks:
  - name: approve
    action: core.ask
    input:
      prompt: "ship it?"
      schema: {type: object, properties: {ok: {type: boolean}}, required: [ok]}
"""


@dataclass
class Deployment:
    """A database, a ``treadle api`` on it, and the two ways of running commands."""

    url: str
    base: str
    database: TreadleCli  # TREADLE_DATABASE_URL, as on a machine with the database
    operator: TreadleCli  # TREADLE_API_TOKEN only, in a folder of its own
    token: str
    viewer_token: str
    admin_token: str
    process: ServiceProcess

    def start(self, name: str = "Ada") -> str:
        with Client(self.url) as client:
            return client.start("ops.fan_out", {"name": name})

    def over_api(self, *args: str, code: int | None = None) -> CliResult:
        return self.operator(*args, "--api", self.base, code=code)

    def both(self, *args: str, code: int = 0) -> tuple[CliResult, CliResult]:
        """The command on the database and through the API; both must exit ``code``."""
        return self.database(*args, code=code), self.over_api(*args, code=code)


def _tokens(database: TreadleCli) -> list[str]:
    made = []
    for name, role in (("ops", "operator"), ("watcher", "viewer"), ("boss", "admin")):
        created = database("tokens", "create", "--name", name, "--role", role, code=0)
        made.append(created.stdout.strip())
    return made


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    root = tmp_path_factory.mktemp("over_api")
    url = f"sqlite:///{root / 'treadle.db'}"
    Store.open(url).close()
    with Client(url) as client:
        client.register(load_workflow_text(textwrap.dedent(FAN_OUT), "<fan_out>"))
        ask = load_workflow_text(textwrap.dedent(ASK), "<ask>")
        client.register(ask, catalog=load_packs([PACKS]))  # core.ask: an inquiry
    (root / "db").mkdir()
    (root / "operator").mkdir()
    # in-process: the same commands and output, without a new interpreter per command
    env = treadle_environment(database_url=url)
    database = TreadleCli(root / "db", env, timeout=60, in_process=True)
    token, viewer_token, admin_token = _tokens(database)
    operator = TreadleCli(
        root / "operator", treadle_environment(api_token=token), timeout=60, in_process=True
    )
    assert "TREADLE_DATABASE_URL" not in operator.env

    port = free_port()
    process = ServiceProcess(
        "api",
        # --no-embedded: the runs stay where they start, for the reads and controls
        ["api", "--port", str(port), "--database", url, "--no-embedded"],
        treadle_environment(log_level="INFO"),
        root / "api.log",
    )
    base = f"http://127.0.0.1:{port}"

    try:
        wait_until_serving(process, base)
        yield Deployment(url, base, database, operator, token, viewer_token, admin_token, process)
        assert not (root / "operator" / ".treadle").exists(), "--api opened a database"
    finally:
        process.close()


def _ids(text: str, *pairs: tuple[str, str]) -> str:
    for old, new in pairs:
        text = text.replace(old, new)
    return text


def test_runs_list_and_show_print_what_the_database_path_prints(
    deployment: Deployment,
) -> None:
    run_id = deployment.start("Grace")
    for _ in range(3):
        deployment.start()

    by_db, by_api = deployment.both("runs", "list")
    assert run_id in by_api.stdout
    assert by_api.stdout == by_db.stdout
    by_db, by_api = deployment.both("runs", "list", "--json", "--status", "running", "--limit", "2")
    assert by_api.stdout == by_db.stdout
    assert len(by_api.json()) == 2
    assert by_api.stderr == by_db.stderr
    assert by_api.stderr.startswith("next page: --cursor ")
    cursor = by_api.stderr.split()[-1]
    by_db, by_api = deployment.both("runs", "list", "--limit", "2", "--cursor", cursor)
    assert by_api.stdout == by_db.stdout

    by_db, by_api = deployment.both("runs", "show", run_id)
    assert by_api.stdout == by_db.stdout
    assert by_api.json()["parameters"] == {"name": "Grace", "password": "***"}
    by_db, by_api = deployment.both("runs", "show", run_id, "--items", "each", "--limit", "2")
    assert by_api.stdout == by_db.stdout
    by_db, by_api = deployment.both("runs", "show", run_id, "--all-items")
    assert by_api.stdout == by_db.stdout

    by_db, by_api = deployment.both("runs", "show", "r-nope", code=2)
    assert by_api.stderr == by_db.stderr == "error: no run r-nope\n"
    by_db, by_api = deployment.both("runs", "show", run_id, "--items", "nope", code=2)
    assert by_api.stderr == by_db.stderr
    by_db, by_api = deployment.both("runs", "list", "--cursor", "bad", code=2)
    assert by_api.stderr == by_db.stderr


def test_runs_show_attempts_prints_what_the_database_path_prints(deployment: Deployment) -> None:
    run_id = deployment.start("Ada")

    by_db, by_api = deployment.both("runs", "show", run_id, "--attempts", "each", "--limit", "2")
    assert by_api.stdout == by_db.stdout
    page = by_api.json()
    assert [a["input"] for a in page["attempts"]] == [
        {"value": "a for Ada"},
        {"value": "b for Ada"},
    ]
    assert [(a["status"], a["output"]) for a in page["attempts"]] == [("queued", None)] * 2
    cursor = page["next_cursor"]
    by_db, by_api = deployment.both(
        "runs", "show", run_id, "--attempts", "each", "--cursor", cursor
    )
    assert by_api.stdout == by_db.stdout
    assert [a["item"] for a in by_api.json()["attempts"]] == [2, 3, 4]

    args = ("runs", "show", run_id, "--attempts", "each", "--items", "each")
    by_db, by_api = deployment.both(*args, code=2)
    assert by_api.stderr == by_db.stderr == "error: give --items or --attempts, not both\n"
    by_db, by_api = deployment.both("runs", "show", run_id, "--attempts", "nope", code=2)
    assert by_api.stderr == by_db.stderr


def test_runs_cancel_through_the_api_prints_what_the_distributed_path_prints(
    deployment: Deployment,
) -> None:
    by_db_id, by_api_id = deployment.start(), deployment.start()
    by_db = deployment.database("runs", "cancel", by_db_id, "--distributed", code=0)
    by_api = deployment.over_api("runs", "cancel", by_api_id, code=0)
    assert by_api.stdout.startswith(f"run {by_api_id} is canceled: canceled by ")
    assert _ids(by_db.stdout, (by_db_id, by_api_id)) == by_api.stdout
    shown_db = deployment.database("runs", "show", by_db_id, code=0).json()
    shown_api = deployment.over_api("runs", "show", by_api_id, code=0).json()
    assert shown_api["status"] == "canceled"
    assert shown_api["error"] == shown_db["error"]
    assert [t["status"] for t in shown_api["tasks"]] == [t["status"] for t in shown_db["tasks"]]

    again_db = deployment.database("runs", "cancel", by_db_id, "--distributed", code=2)
    again_api = deployment.over_api("runs", "cancel", by_api_id, code=2)
    assert again_api.stderr == _ids(again_db.stderr, (by_db_id, by_api_id))
    assert "is canceled" in again_api.stderr

    paused = deployment.over_api("runs", "pause", deployment.start(), "--json", code=0)
    assert paused.json()["status"] == "pausing"
    missing = deployment.over_api("runs", "cancel", "r-nope", code=2)
    assert missing.stderr == f"error: no run r-nope in {deployment.base}\n"


def test_the_api_url_and_token_come_from_the_environment_and_are_checked(
    deployment: Deployment,
) -> None:
    run_id = deployment.start()
    env = treadle_environment(api_url=deployment.base, api_token=deployment.token)
    configured = TreadleCli(deployment.operator.workdir, env)
    assert (
        configured("runs", "list", code=0).stdout
        == deployment.database("runs", "list", code=0).stdout
    )

    anonymous = TreadleCli(deployment.operator.workdir, treadle_environment())
    missing = anonymous("runs", "list", "--api", deployment.base, code=2)
    assert "TREADLE_API_TOKEN" in missing.stderr
    wrong = anonymous("runs", "list", "--api", deployment.base, "--token", "trd_wrong", code=2)
    assert wrong.stderr == "error: invalid, expired or revoked token\n"
    viewer = TreadleCli(
        deployment.operator.workdir, treadle_environment(api_token=deployment.viewer_token)
    )
    refused = viewer("runs", "cancel", run_id, "--api", deployment.base, code=2)
    assert "needs the operator role" in refused.stderr
    assert deployment.database("runs", "show", run_id, code=0).json()["status"] == "running"
    down = deployment.operator("runs", "list", "--api", f"http://127.0.0.1:{free_port()}", code=1)
    assert "is unavailable" in down.stderr
    assert deployment.token not in down.output + wrong.output + missing.output


def test_workflows_events_and_inquiries_through_the_api(deployment: Deployment) -> None:
    by_db, by_api = deployment.both("workflows", "versions", "ops.fan_out")
    assert by_api.stdout == by_db.stdout
    assert "v1" in by_api.stdout

    by_db = deployment.database("events", "send", "ops.nothing", "--id", "ev-db", "--distributed")
    by_api = deployment.over_api("events", "send", "ops.nothing", "--id", "ev-api")
    assert (by_db.code, by_api.code) == (0, 0)
    assert by_api.json() == {**by_db.json(), "event_id": "ev-api"}

    with Client(deployment.url) as client:
        asked = [client.start("ops.ask") for _ in range(2)]
        inquiry_db, inquiry_api = (client.get(r).pending_inquiries[0].id for r in asked)
    by_db, by_api = deployment.both("inquiry", "show", inquiry_api)
    assert by_api.stdout == by_db.stdout
    by_db, by_api = deployment.both("inquiry", "list", "--run", asked[1], "--json")
    assert by_api.stdout == by_db.stdout
    assert [e["id"] for e in by_api.json()] == [inquiry_api]
    bad = deployment.over_api("inquiry", "respond", inquiry_api, "--data", '{"ok": 1}', code=2)
    assert "the answer does not fit the inquiry's schema" in bad.stderr
    answer = ("--data", '{"ok": true}')
    by_db = deployment.database("inquiry", "respond", inquiry_db, *answer, "--distributed")
    by_api = deployment.over_api("inquiry", "respond", inquiry_api, *answer)
    assert (by_db.code, by_api.code) == (0, 0)
    assert by_api.stdout == _ids(by_db.stdout, (inquiry_db, inquiry_api), (asked[0], asked[1]))
    shown = deployment.over_api("inquiry", "show", inquiry_api, code=0).json()
    assert (shown["status"], shown["responder"]) == ("answered", "token:ops")


def test_the_keystore_through_the_api(deployment: Deployment) -> None:
    admin = TreadleCli(
        deployment.operator.workdir, treadle_environment(api_token=deployment.admin_token)
    )

    def as_admin(*args: str, code: int = 0) -> CliResult:
        return admin(*args, "--api", deployment.base, code=code)

    deployment.database("kv", "set", "region", '{"name": "eu-west"}', code=0)
    as_admin("kv", "set", "owner", "ops-team")
    as_admin("kv", "set", "password", "hunter2", "--secret")
    by_db, by_api = deployment.both("kv", "list")
    assert by_api.stdout == by_db.stdout
    assert "password = ***" in by_api.stdout
    assert 'owner = "ops-team"' in by_api.stdout
    for key in ("region", "password"):
        by_db, by_api = deployment.both("kv", "get", key)
        assert (by_api.stdout, by_api.stderr) == (by_db.stdout, by_db.stderr)
    assert "hunter2" not in by_api.output
    by_db, by_api = deployment.both("kv", "get", "nope", code=2)
    assert by_api.stderr == by_db.stderr == "error: no key 'nope'\n"

    refused = deployment.over_api("kv", "delete", "region", code=2)
    assert "needs the admin role" in refused.stderr
    as_admin("kv", "delete", "region")
    assert as_admin("kv", "delete", "region", code=2).stderr == "error: no key 'region'\n"
    assert "region" not in deployment.database("kv", "list", code=0).stdout
    reserved = as_admin("kv", "set", "_x", "1", code=2)
    assert reserved.stderr == deployment.database("kv", "set", "_x", "1", code=2).stderr


class Driver:
    """Carries the runs of the database on in this process (the services' stand-in)."""

    def __init__(self, url: str) -> None:
        self.runner = EmbeddedRunner(Settings(database_url=url), load_packs([PACKS]))
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        try:
            while not self.stop.wait(0.05):
                with self.runner.store.unit_of_work() as uow:
                    going = [s.id for s in uow.list_runs(limit=1000) if not s.status.is_terminal]
                going = [r for r in going if self.runner.runs.load(r).workflow != "ops.ask"]
                going = [r for r in going if self.runner.runs.load(r).workflow != "ops.fan_out"]
                if going:
                    self.runner.follow_all(going)
        except BaseException as exc:
            self.errors.append(exc)


_TIMES = re.compile(r" in \d+\.\d\ds")


def _progress(result: CliResult) -> list[str]:
    """The progress lines of a ``treadle run``: where each task ended (their times aside;
    whether a poll saw a task running depends on when it looked), the run id as ``RUN``."""
    [run_id] = re.findall(r"^run (r-\w+) of", result.stderr, re.MULTILINE)
    return [
        _TIMES.sub("", line).replace(run_id, "RUN")
        for line in result.stderr.splitlines()
        if not line.startswith("  ") or " in " in line
    ]


def test_run_starts_and_follows_a_published_workflow_through_the_api(
    deployment: Deployment,
) -> None:
    run = ("run", "examples.hello_world", "-p", "name=Ada")
    driver = Driver(deployment.url)
    driver.thread.start()
    try:
        by_db = deployment.database(*run, "--distributed", code=0)
        by_api = deployment.over_api(*run, code=0)
        by_json = deployment.over_api(*run, "--json", "-q", code=0)
    finally:
        driver.stop.set()
        driver.thread.join(30)
        driver.runner.close()
    assert driver.errors == []
    assert by_api.stdout == by_db.stdout
    assert _progress(by_api) == _progress(by_db)
    assert _progress(by_api)[-1] == "run RUN succeeded"
    assert by_json.json()["status"] == "succeeded"
    assert by_json.stderr == ""

    file = deployment.operator.write("flow.yaml", "ref: x.y\ntasks: []\n")
    refused = deployment.over_api("run", str(file), code=2)
    assert "publish" in refused.stderr
    unknown = deployment.over_api("run", "ops.nope", code=2)
    assert "ops.nope" in unknown.stderr
    bad = deployment.over_api("run", "ops.fan_out", "-p", "name=3", "-p", "x=1", code=2)
    assert bad.stderr.startswith("error: invalid parameters for ops.fan_out:")
