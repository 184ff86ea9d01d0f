"""Reading and starting runs through the HTTP API at 1, 50 and 200 concurrent clients.

A real ``treadle api`` process (uvicorn, ``--workers`` of them) serves a throwaway
PostgreSQL database holding 200 runs; no scheduler runs, so started runs stay where they
start, which is all this measures. Each phase keeps ``clients`` connections busy for
``--seconds``, each client sending its next request as soon as the last one answered:

* read: ``GET /api/v1/runs/{id}`` of a run chosen at random (viewer tokens), at 1, 50
  and 200 clients;
* start: ``POST /api/v1/workflows/{ref}/execute`` (operator tokens; a run each), at 50
  and 200 clients.

Every request carries the token of one of ``clients`` tokens, as that many separate
clients would. The rate limit is on (its requests are counted and leased as usual) but
set high (``--rate-limit``) so that no phase is refused. The load comes from wrk when it
is installed (``apt-get install wrk``: light, in C), else from asyncio and httpx in this
process, which costs the 2-core machine a good share of what it measures (``--load``).

With ``--before DIR`` (a checkout of an earlier commit, for instance made with ``git
worktree add /tmp/api-before HEAD``, run on this venv with ``PYTHONPATH=DIR/src``), a
second ``treadle api`` of that code serves the same database, and every phase runs
against both in alternating order, ``--rounds`` times, so that the machine's other load
hits both alike. Prints each measurement as it is made (requests per second, p50 and p95
latency, errors, the server's CPU milliseconds per request), then a table of medians, and
the machine's load average before and after. The target (issue 10): reading a run, p95
under 50 ms at 50 clients on the 2-core machine.

    .venv/bin/python bench/api.py [--quick] [--before /tmp/api-before] [--seconds 10]
        [--rounds 2] [--workers 2] [--load auto|wrk|asyncio]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import textwrap
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from api_load import REF, Measured, generator, run_load
from treadle.client import Client
from treadle.common.access import DEFAULT_WORKSPACE, Principal, Role
from treadle.common.loader import load_workflow_text
from treadle.scheduler.service.access import issue
from treadle.scheduler.store import Store
from treadle.testing import throwaway_postgres_database
from treadle.testing.processes import ServiceProcess, treadle_environment, wait_until_serving
from treadle.testing.redis_server import free_port

WORKFLOW = """\
ref: REF
parameters:
  who: {type: string, required: true}
tasks:
  - name: greet
    action: core.echo
    input: {message: "hello {{ parameters.who }}"}
  - name: again
    action: core.echo
    input: {message: "{{ task.greet.result.message }} again"}
""".replace("REF", REF)

#: (what, clients) of each phase, in order.
PHASES: tuple[tuple[str, int], ...] = (
    ("read", 1),
    ("read", 50),
    ("read", 200),
    ("start", 50),
    ("start", 200),
)

#: Runs stored before the phases, read at random.
SEEDED_RUNS = 200


@dataclass
class Server:
    """One ``treadle api`` under measurement."""

    label: str
    process: ServiceProcess
    base: str

    def cpu_seconds(self) -> float | None:
        """CPU time (user and system) of the process and its children (the uvicorn
        workers) so far; None where /proc cannot tell."""
        total = 0.0
        ticks = os.sysconf("SC_CLK_TCK")
        for pid in _process_tree(self.process.pid):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                return None
            total += (int(fields[11]) + int(fields[12])) / ticks
        return total


def _process_tree(pid: int) -> list[int]:
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return [pid]
    return [pid] + [each for child in children for each in _process_tree(int(child))]


def tokens(url: str, count: int) -> dict[Role, list[str]]:
    """``count`` tokens of each role (viewer, operator), as ``treadle tokens create``
    would make them."""
    store = Store.open(url, migrate=False)
    creator = Principal("bench", Role.ADMIN, DEFAULT_WORKSPACE)
    made: dict[Role, list[str]] = {Role.VIEWER: [], Role.OPERATOR: []}
    try:
        with store.unit_of_work() as uow:
            for role, texts in made.items():
                for number in range(count):
                    issued = issue(
                        uow,
                        name=f"bench-{role.value}-{number}",
                        role=role,
                        workspace=DEFAULT_WORKSPACE,
                        expires_at=None,
                        created_by=creator,
                        now=datetime.now(UTC),
                    )
                    texts.append(issued.plaintext)
    finally:
        store.close()
    return made


@contextmanager
def serving(
    label: str, url: str, args: argparse.Namespace, logs: Path, source: Path | None
) -> Iterator[Server]:
    """``treadle api`` on ``url``: this checkout's, or the one at ``source``."""
    env = treadle_environment(
        database_url=url, log_level="WARNING", api_rate_limit_per_minute=args.rate_limit
    )
    if source is not None:
        env["PYTHONPATH"] = str(source / "src")
    port = free_port()
    command = ["api", "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers)]
    process = ServiceProcess(label, command, env, logs / f"{label}.log")
    try:
        server = Server(label, process, f"http://127.0.0.1:{port}")
        wait_until_serving(process, server.base)
        yield server
    finally:
        process.close()


@dataclass
class Row:
    """A measurement: which server, which phase, what it measured and cost."""

    server: str
    mode: str
    clients: int
    measured: Measured
    cpu_ms: float | None

    def line(self) -> str:
        m = self.measured
        cpu = f"  server CPU {self.cpu_ms:5.2f} ms/req" if self.cpu_ms is not None else ""
        errors = f"  errors {m.errors}" + (f" {m.failures}" if m.failures else "")
        return (
            f"{self.server:<7} {self.mode:<5} {self.clients:>4} clients: {m.rate:7.1f} req/s  "
            f"p50 {m.p50:7.1f} ms  p95 {m.p95:7.1f} ms{errors}{cpu}"
        )


def measure(
    server: Server,
    mode: str,
    clients: int,
    *,
    args: argparse.Namespace,
    made: dict[Role, list[str]],
    run_ids: list[str],
    workdir: Path,
) -> Row:
    role = Role.OPERATOR if mode == "start" else Role.VIEWER
    before = server.cpu_seconds()
    measured = run_load(
        args.load,
        server.base,
        mode,
        clients,
        args.seconds,
        tokens=made[role],
        run_ids=run_ids,
        workdir=workdir,
    )
    after = server.cpu_seconds()
    cpu_ms = None
    if before is not None and after is not None and measured.requests:
        cpu_ms = (after - before) * 1000 / (measured.requests + measured.errors)
    return Row(server.label, mode, clients, measured, cpu_ms)


def summary(rows: Sequence[Row], servers: Sequence[str]) -> list[str]:
    """Per phase and server: medians over the rounds."""
    lines = [f"{'phase':<14}" + "".join(f"{s + ' req/s':>14}{'p50':>9}{'p95':>9}" for s in servers)]
    for mode, clients in PHASES:
        cells = f"{mode} {clients:>4}".ljust(14)
        for label in servers:
            mine = [r for r in rows if (r.server, r.mode, r.clients) == (label, mode, clients)]
            if not mine:
                cells += f"{'-':>14}{'-':>9}{'-':>9}"
                continue
            rate = statistics.median(r.measured.rate for r in mine)
            p50 = statistics.median(r.measured.p50 for r in mine)
            p95 = statistics.median(r.measured.p95 for r in mine)
            cells += f"{rate:14.1f}{p50:9.1f}{p95:9.1f}"
        lines.append(cells)
    return lines


def _load_average() -> str:
    one, five, fifteen = os.getloadavg()
    return f"{one:.2f} {five:.2f} {fifteen:.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="of each measurement")
    parser.add_argument("--rounds", type=int, default=2, help="measurements per phase")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    parser.add_argument("--before", type=Path, help="a checkout to compare with")
    parser.add_argument("--load", choices=["auto", "wrk", "asyncio"], default="auto")
    parser.add_argument("--rate-limit", type=int, default=1_000_000, help="per token, a minute")
    parser.add_argument("--quick", action="store_true", help="3 s a measurement, one round")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 3.0, 1
    args.load = generator(args.load)
    if args.before is not None and not (args.before / "src" / "treadle").is_dir():
        parser.error(f"--before {args.before}: no src/treadle there")
    print(f"machine: {os.cpu_count()} CPUs, load average {_load_average()} (1, 5, 15 min)")
    with (
        throwaway_postgres_database("treadle_bench_api") as url,
        tempfile.TemporaryDirectory() as scratch,
        ExitStack() as stack,
    ):
        workdir = Path(scratch)
        Store.open(url).close()
        with Client(url) as client:
            client.register(load_workflow_text(textwrap.dedent(WORKFLOW), "<bench>"))
            run_ids = [client.start(REF, {"who": f"seed {i}"}) for i in range(SEEDED_RUNS)]
        made = tokens(url, max(clients for _, clients in PHASES))
        servers = [stack.enter_context(serving("after", url, args, workdir, None))]
        if args.before is not None:
            servers.insert(
                0, stack.enter_context(serving("before", url, args, workdir, args.before))
            )
        print(
            f"treadle api, {args.workers} uvicorn workers each, PostgreSQL; load from "
            f"{args.load}; {args.seconds:g} s a measurement, {args.rounds} round(s)"
        )
        for server in servers:  # connections, caches and code paths warm before measuring
            run_load(
                args.load,
                server.base,
                "read",
                50,
                2.0,
                tokens=made[Role.VIEWER],
                run_ids=run_ids,
                workdir=workdir,
            )
        rows: list[Row] = []
        for mode, clients in PHASES:
            for round_ in range(args.rounds):
                for server in servers if round_ % 2 == 0 else servers[::-1]:
                    row = measure(
                        server,
                        mode,
                        clients,
                        args=args,
                        made=made,
                        run_ids=run_ids,
                        workdir=workdir,
                    )
                    rows.append(row)
                    print(row.line(), flush=True)
        print()
        print("\n".join(summary(rows, [s.label for s in servers])))
        print(f"load average after: {_load_average()} (1, 5, 15 min)")


if __name__ == "__main__":
    main()
