"""The scheduler's step alone on PostgreSQL: a chain through ``RunService.settle`` and the
direct publish, with no broker and no worker (issue 11).

``bench/distributed.py`` measures the whole system, where the broker, the worker and a
noisy two-core machine move every figure by more than a change to the scheduler's step
does. This runs only the scheduler's part of each step, as ``treadle scheduler`` runs it:
record a task's result (the run locked, the last publish marked sent), decide, save,
commit, then publish the successor after commit (to an in-memory publisher). It prints
milliseconds and CPU milliseconds per step, the median of ``--rounds`` rounds with
min-max; each round is a fresh chain on a throwaway database.

``--compare-with PATH`` runs the same steps with another checkout's interpreter and
package (``PATH/.venv/bin/python``), alternating rounds with this one, and prints the
ratio of medians. Needs PostgreSQL (``treadle.testing.services``; 127.0.0.1 by default).

    .venv/bin/python bench/scheduler_step.py [--chain 300] [--rounds 6] [--compare-with PATH]
    .venv/bin/python bench/scheduler_step.py --runs 50 --chain 10   # batches of 50 results
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve()


@dataclass
class _Publisher:
    """Keeps what the step publishes: the broker is not what is measured here."""

    published: list[Any] = field(default_factory=list)

    def publish(self, commands: Sequence[Any]) -> None:
        self.published.extend(commands)


class _Clock:
    """Moves one millisecond a read: the step's times stay ordered without a real clock."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


def one_round(chain: int, runs_at_once: int) -> dict[str, float]:
    """``runs_at_once`` chains of ``chain`` no-ops on a fresh database, each step applying
    one result of every run together (as a batch of reports); wall and CPU ms per step."""
    import treadle
    from treadle.common.loader import load_packs
    from treadle.common.messages import TaskResult
    from treadle.common.statuses import AttemptStatus
    from treadle.scheduler.core.commands import DispatchTask
    from treadle.scheduler.core.endings import AttemptEnding
    from treadle.scheduler.service.commands import CommandHandlers
    from treadle.scheduler.service.definitions import Definitions
    from treadle.scheduler.service.direct_publish import DirectPublish
    from treadle.scheduler.service.relay import Relay
    from treadle.scheduler.service.runs import RunService
    from treadle.scheduler.service.starting import RunStarter
    from treadle.scheduler.store import Store
    from treadle.testing import throwaway_postgres_database
    from treadle_driver import chain as chain_spec  # (this folder: the same chain as there)

    spec = chain_spec(chain, "bench.step_chain")
    catalog = load_packs([Path(treadle.__file__).parent / "packs"])
    catalog.workflows[spec.ref] = spec
    clock = _Clock()
    with throwaway_postgres_database("step_bench") as url:
        store = Store.open(url, clock=clock, pre_ping=False)
        try:
            handlers = CommandHandlers("treadle.tasks")
            runs = RunService(store, Definitions(store, catalog), clock=clock,
                              write_commands=handlers.write)  # fmt: skip
            publisher = _Publisher()
            direct = DirectPublish(store, publisher, hold_for=timedelta(seconds=30), clock=clock)
            runs.outgoing = direct
            relay = Relay(RunStarter(runs), publisher, handlers, clock=clock)
            client = RunService(store, runs.definitions, clock=clock,
                                write_commands=handlers.write)  # fmt: skip
            for _ in range(runs_at_once):  # as a client starts them: their rows are relayed
                RunStarter(client).start(spec, {})
            relay.drain()
            began, cpu = time.perf_counter(), time.process_time()
            steps = 0
            while True:
                dispatches = [c for c in publisher.published if isinstance(c, DispatchTask)]
                if not dispatches:
                    break
                publisher.published.clear()
                endings = [
                    AttemptEnding.reported(
                        TaskResult(
                            attempt_id=d.dispatch.attempt_id,
                            outcome=AttemptStatus.SUCCEEDED,
                            finished_at=clock(),
                        )
                    )
                    for d in dispatches
                ]
                with store.unit_of_work() as uow:
                    runs.settle(uow, endings)
                direct.flush()
                steps += 1
            wall = time.perf_counter() - began
            used = time.process_time() - cpu
        finally:
            store.close()
    if steps < chain - 1:
        raise SystemExit(f"the chain stopped after {steps} steps of {chain - 1}")
    return {"ms": wall * 1000 / steps, "cpu_ms": used * 1000 / steps, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chain", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument(
        "--runs", type=int, default=1, help="chains stepping together (a batch of this many)"
    )
    parser.add_argument("--compare-with", type=Path, metavar="PATH")
    parser.add_argument("--one-round", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_round:
        print(json.dumps(one_round(args.chain, args.runs)))
        return
    sides = {"this": Path(sys.executable)}
    if args.compare_with:
        sides["other"] = args.compare_with.resolve() / ".venv" / "bin" / "python"
    found: dict[str, list[dict[str, float]]] = {name: [] for name in sides}
    for index in range(args.rounds):
        order = list(sides) if index % 2 == 0 else list(reversed(sides))
        for name in order:
            command = [str(sides[name]), str(HERE), "--one-round", "--chain", str(args.chain)]
            done = subprocess.run(
                [*command, "--runs", str(args.runs)],
                capture_output=True,
                text=True,
                check=True,
            )
            found[name].append(json.loads(done.stdout.splitlines()[-1]))
            print(f"round {index + 1} {name}: {found[name][-1]}", file=sys.stderr)
    medians: dict[str, dict[str, float]] = {}
    for name, rounds in found.items():
        medians[name] = {}
        for key in ("ms", "cpu_ms"):
            values = [r[key] for r in rounds]
            medians[name][key] = statistics.median(values)
            print(
                f"{name:<6} {key:<7} {statistics.median(values):6.3f} "
                f"[{min(values):.3f}-{max(values):.3f}] per step "
                f"({args.runs} x {args.chain}-task chain)"
            )
    if "other" in medians:
        # Each round's pair ran back to back: the median of their ratios drifts less with
        # a machine whose speed wanders than the ratio of the medians does.
        for key in ("ms", "cpu_ms"):
            paired = [t[key] / o[key] for t, o in zip(found["this"], found["other"], strict=True)]
            print(
                f"this / other {key}: {medians['this'][key] / medians['other'][key]:.2f}x "
                f"(round by round: median {statistics.median(paired):.2f}x "
                f"[{min(paired):.2f}-{max(paired):.2f}])"
            )


if __name__ == "__main__":
    main()
