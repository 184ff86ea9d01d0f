"""Starting and reading runs through the HTTP API, with 50 and 200 concurrent clients.

A real ``treadle api`` process (uvicorn, ``--workers`` of them) serves a throwaway
PostgreSQL database; no scheduler runs, so started runs stay where they start, which is
all this measures. Clients are asyncio tasks sharing one httpx connection pool, each
sending its next request as soon as the last one answered, for ``--seconds`` per phase:

* start: ``POST /api/v1/workflows/{ref}/execute`` (an operator token; a run each);
* read: ``GET /api/v1/runs/{id}`` of runs chosen at random among those started (a viewer
  token), each answer the run document.

Prints requests per second and p50/p95 latency per phase and concurrency. The target
(issue 10): reading a run, p95 under 50 ms at 50 clients on the 2-core machine. The load
generator shares the machine with the server, as it would on a laptop; its own cost is
in the figures.

    .venv/bin/python bench/api.py [--clients 50 200] [--seconds 10] [--workers 2]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import textwrap
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from treadle.client import Client
from treadle.common.access import DEFAULT_WORKSPACE, Principal, Role
from treadle.common.loader import load_workflow_text
from treadle.scheduler.service.access import issue
from treadle.scheduler.store import Store
from treadle.testing import throwaway_postgres_database
from treadle.testing.processes import ServiceProcess, treadle_environment, wait_until
from treadle.testing.redis_server import free_port

WORKFLOW = """\
ref: bench.api
parameters:
  who: {type: string, required: true}
tasks:
  - name: greet
    action: core.echo
    input: {message: "hello {{ parameters.who }}"}
  - name: again
    action: core.echo
    input: {message: "{{ task.greet.result.message }} again"}
"""


@dataclass
class Phase:
    """What one phase measured: latencies (ms) of answered requests, and failures."""

    latencies: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def line(self, label: str, clients: int) -> str:
        done = sorted(self.latencies)
        if not done:
            return f"{label:<6} {clients:>4} clients: nothing answered {self.failures}"
        p95 = done[max(0, int(len(done) * 0.95) - 1)]
        rate = len(done) / self.seconds
        failed = f"  failures {self.failures}" if self.failures else ""
        return (
            f"{label:<6} {clients:>4} clients: {rate:8.1f} req/s  "
            f"p50 {statistics.median(done):7.1f} ms  p95 {p95:7.1f} ms  "
            f"({len(done)} requests){failed}"
        )


def tokens(url: str, count: int) -> dict[Role, list[str]]:
    """``count`` tokens of each role: one per client, as separate clients would have
    (each token has its own rate limit, counted in the database on every request)."""
    store = Store.open(url, migrate=False)
    creator = Principal("bench", Role.ADMIN, DEFAULT_WORKSPACE)
    made: dict[Role, list[str]] = {}
    try:
        for role in (Role.VIEWER, Role.OPERATOR):
            made[role] = []
            for number in range(count):
                with store.unit_of_work() as uow:
                    made[role].append(
                        issue(
                            uow,
                            name=f"bench-{role.value}-{number}",
                            role=role,
                            workspace=DEFAULT_WORKSPACE,
                            expires_at=None,
                            created_by=creator,
                            now=datetime.now(UTC),
                        ).plaintext
                    )
    finally:
        store.close()
    return made


async def load(
    base: str,
    clients: int,
    *,
    seconds: float,
    tokens: list[str],
    send: str,
    run_ids: list[str],
) -> Phase:
    """``clients`` tasks sending requests back to back for ``seconds``."""
    phase = Phase()
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60.0) as http:
        deadline = time.perf_counter() + seconds

        async def one_client(number: int) -> None:
            headers = {"Authorization": f"Bearer {tokens[number]}"}
            while time.perf_counter() < deadline:
                began = time.perf_counter()
                try:
                    if send == "start":
                        response = await http.post(
                            "/api/v1/workflows/bench.api/execute",
                            json={"parameters": {"who": f"client {number}"}},
                            headers=headers,
                        )
                    else:
                        response = await http.get(
                            f"/api/v1/runs/{random.choice(run_ids)}", headers=headers
                        )
                except httpx.HTTPError as exc:
                    key = type(exc).__name__
                    phase.failures[key] = phase.failures.get(key, 0) + 1
                    continue
                if response.status_code >= 300:
                    key = str(response.status_code)
                    phase.failures[key] = phase.failures.get(key, 0) + 1
                    continue
                phase.latencies.append((time.perf_counter() - began) * 1000)
                if send == "start":
                    run_ids.append(response.json()["id"])

        began = time.perf_counter()
        await asyncio.gather(*(one_client(n) for n in range(clients)))
        phase.seconds = time.perf_counter() - began
    return phase


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[50, 200])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes")
    args = parser.parse_args()
    with (
        throwaway_postgres_database("treadle_bench_api") as url,
        tempfile.TemporaryDirectory() as logs,
    ):
        Store.open(url).close()
        with Client(url) as client:
            client.register(load_workflow_text(textwrap.dedent(WORKFLOW), "<bench>"))
            run_ids = [client.start("bench.api", {"who": f"seed {i}"}) for i in range(200)]
        made = tokens(url, max(args.clients))
        port = free_port()
        server = ServiceProcess(
            "api",
            ["api", "--host", "127.0.0.1", "--port", str(port), "--workers", str(args.workers)],
            treadle_environment(database_url=url, log_level="WARNING"),
            Path(logs) / "api.log",
        )
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until(lambda: _answers(base), 30, "the API answering /healthz")
            print(
                f"treadle api, {args.workers} uvicorn workers, PostgreSQL; "
                f"{args.seconds:g} s a phase"
            )
            for clients in args.clients:
                started = asyncio.run(
                    load(
                        base,
                        clients,
                        seconds=args.seconds,
                        tokens=made[Role.OPERATOR],
                        send="start",
                        run_ids=run_ids,
                    )
                )
                print(started.line("start", clients), flush=True)
                read = asyncio.run(
                    load(
                        base,
                        clients,
                        seconds=args.seconds,
                        tokens=made[Role.VIEWER],
                        send="read",
                        run_ids=run_ids,
                    )
                )
                print(read.line("read", clients), flush=True)
        finally:
            server.close()


def _answers(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


if __name__ == "__main__":
    main()
