"""Priority on both brokers: do high-priority tasks overtake a backlog of low-priority ones?

For each broker (RabbitMQ, Redis) and each mode, ``--repeat`` rounds (default 3), rounds
alternating so machine noise hits every side alike. Each round starts a fresh ``treadle
worker --concurrency 2`` (prefork) on a queue of its own, with ``processes`` from
``bench/distributed.py``, and publishes through the scheduler's own ``CeleryPublisher``:

1. a backlog of 1000 ``core.noop`` dispatches at priority 0, in one confirmed batch;
2. once the worker has finished the first of them, 10 more ``core.noop`` dispatches: at
   priority 9 (mode **priority**), or at 0 like the backlog (mode **fifo**, what the
   brokers did before priorities).

It reads every result from the results queue, as the scheduler does, and reports where the
10 finished: their completion ranks among the 1010 (by the worker's ``finished_at``), and
the time from their publication to their completion. Nothing here needs the database: the
dispatches are the commands the scheduler's core would decide (``DispatchTask`` with its
``priority``), and the scheduler's publisher is the code that routes them.

    .venv/bin/python bench/priority.py [--repeat 3] [--backlog 1000] [--json FILE]
    .venv/bin/python bench/priority.py --quick      # backlog 100, one round: a smoke test

Process logs go to ``/tmp/treadle-bench-distributed/`` (``priority-*``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kombu import Connection, Consumer
from kombu.message import Message

from distributed import LOGS, processes
from treadle.common.messages import TaskDispatch, TaskResult, WorkerReport
from treadle.common.settings import Settings
from treadle.scheduler.core.commands import DispatchTask
from treadle.scheduler.service.celery_publisher import CeleryPublisher
from treadle.testing import throwaway_rabbitmq_vhost, throwaway_redis_database
from treadle.testing.processes import TREADLE, treadle_environment
from treadle.worker.app import results_queue

HIGH = 10
LOW_PRIORITY = 0
HIGH_PRIORITY = 9
MODES = ("priority", "fifo")


@dataclass(frozen=True)
class Round:
    """One round's figures: where the high-priority tasks finished."""

    broker: str
    mode: str
    backlog: int
    done_before: int  # backlog tasks the worker had finished when the high ones went out
    ranks: list[int]  # completion rank (1-based) of each high one among all
    waits_ms: list[float]  # publication -> completion of each high one
    drain_s: float  # the whole backlog, first publish to last completion


class Results:
    """Every result report on the results queue, as the scheduler reads them."""

    def __init__(self, settings: Settings) -> None:
        self.connection = Connection(settings.broker_url)
        self.results: dict[str, TaskResult] = {}
        self.consumer = Consumer(
            self.connection, [results_queue(settings)], callbacks=[self._on], accept=["json"]
        )
        self.consumer.consume()

    def _on(self, body: Any, message: Message) -> None:
        report = WorkerReport.model_validate(body)
        if report.result is not None:
            self.results[report.result.attempt_id] = report.result
        message.ack()

    def wait(self, attempts: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not all(a in self.results for a in attempts):
            if time.monotonic() > deadline:
                missing = sum(a not in self.results for a in attempts)
                raise SystemExit(
                    f"{missing} result(s) missing after {timeout:g} s (logs in {LOGS})"
                )
            try:
                self.connection.drain_events(timeout=0.5)
            except TimeoutError:
                continue

    def close(self) -> None:
        self.consumer.cancel()
        self.connection.release()


def noop(run: str, index: int) -> TaskDispatch:
    return TaskDispatch(
        attempt_id=f"{run}/t/{index}/1",
        run_id=run,
        task="t",
        execution=1,
        item_index=index,
        attempt=1,
        action_ref="core.noop",
        input={},
    )


@contextmanager
def broker(name: str) -> Iterator[str]:
    if name == "rabbitmq":
        with throwaway_rabbitmq_vhost("priority_bench") as url:
            yield url
    else:
        with throwaway_redis_database() as url:
            yield url


def one_round(broker_name: str, broker_url: str, mode: str, backlog: int, tag: str) -> Round:
    queue = f"prio-bench-{uuid.uuid4().hex[:6]}"
    settings = Settings(broker_url=broker_url, default_queue=queue)
    env = treadle_environment(None, broker_url=broker_url, default_queue=queue)
    worker = [str(TREADLE), "worker", "--concurrency", "2", "--loglevel", "WARNING"]
    run = f"bench-{uuid.uuid4().hex[:8]}"
    lows = [noop(run, i) for i in range(backlog)]
    highs = [noop(run, backlog + i) for i in range(HIGH)]
    high_priority = HIGH_PRIORITY if mode == "priority" else LOW_PRIORITY
    publisher = CeleryPublisher.from_settings(settings)
    results = Results(settings)
    try:
        with processes(tag, ("worker", worker, env)):
            warm = noop(run, backlog + HIGH)  # waits out the worker's start-up; declares the queues
            publisher.publish([DispatchTask(warm, priority=LOW_PRIORITY)])
            results.wait([warm.attempt_id], 120)
            results.results.clear()
            began = datetime.now(UTC)
            publisher.publish([DispatchTask(d, priority=LOW_PRIORITY) for d in lows])
            results.wait([lows[0].attempt_id], 120)  # the worker is on the backlog
            submitted = datetime.now(UTC)
            publisher.publish([DispatchTask(d, priority=high_priority) for d in highs])
            results.wait([d.attempt_id for d in [*lows, *highs]], 900)
    finally:
        results.close()
        publisher.close()
    ended = sorted(results.results.values(), key=lambda r: r.finished_at or began)
    # by the worker's clock (same machine): reports reach us later than the work ends
    done_before = sum(1 for r in ended if (r.finished_at or began) <= submitted)
    rank = {r.attempt_id: i + 1 for i, r in enumerate(ended)}
    ranks = sorted(rank[d.attempt_id] for d in highs)
    waits = sorted(
        ((results.results[d.attempt_id].finished_at or submitted) - submitted).total_seconds()
        * 1000
        for d in highs
    )
    last = max(r.finished_at or began for r in ended)
    return Round(
        broker_name, mode, backlog, done_before, ranks, waits, (last - began).total_seconds()
    )


def summary(rounds: list[Round]) -> list[dict[str, Any]]:
    """Per broker and mode: medians over rounds of the high ones' median and worst rank and
    wait, and of the backlog's drain time."""
    rows = []
    for name in ("rabbitmq", "redis"):
        for mode in MODES:
            mine = [r for r in rounds if r.broker == name and r.mode == mode]
            if not mine:
                continue
            rows.append(
                {
                    "broker": name,
                    "mode": mode,
                    "rounds": len(mine),
                    "done_before": statistics.median(r.done_before for r in mine),
                    "rank_median": statistics.median(statistics.median(r.ranks) for r in mine),
                    "rank_worst": statistics.median(max(r.ranks) for r in mine),
                    "wait_ms_median": statistics.median(
                        statistics.median(r.waits_ms) for r in mine
                    ),
                    "wait_ms_worst": statistics.median(max(r.waits_ms) for r in mine),
                    # tasks finished from the 10's publication to the last of them,
                    # the 10 included: 10 would be a strict order, 10 + backlog left FIFO
                    "to_last": statistics.median(max(r.ranks) - r.done_before for r in mine),
                    "drain_s": statistics.median(r.drain_s for r in mine),
                    "rank_worst_range": [
                        min(max(r.ranks) for r in mine),
                        max(max(r.ranks) for r in mine),
                    ],
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, help="rounds per broker and mode (default 3)")
    parser.add_argument("--backlog", type=int, default=1000, help="low-priority tasks (1000)")
    parser.add_argument("--quick", action="store_true", help="backlog 100, one round")
    parser.add_argument("--brokers", default="rabbitmq,redis", help="rabbitmq,redis")
    parser.add_argument("--json", type=Path, help="write every round and the summary here")
    args = parser.parse_args()
    backlog = 100 if args.quick else args.backlog
    repeat = args.repeat or (1 if args.quick else 3)
    rounds: list[Round] = []
    for name in args.brokers.split(","):
        with broker(name) as url:
            for index in range(repeat):
                for mode in MODES:
                    done = one_round(name, url, mode, backlog, f"priority-{name}-{mode}-{index}")
                    rounds.append(done)
                    print(
                        f"{name} {mode} round {index + 1}/{repeat}: high ranks {done.ranks}, "
                        f"waits {[round(w) for w in done.waits_ms]} ms",
                        file=sys.stderr,
                        flush=True,
                    )
    print_summary(rounds, backlog, repeat)
    if args.json:
        document = {
            "argv": sys.argv[1:],
            "backlog": backlog,
            "high": HIGH,
            "rounds": [asdict(r) for r in rounds],
            "summary": summary(rounds),
        }
        args.json.write_text(json.dumps(document, indent=1) + "\n")
        print(f"raw figures written to {args.json}")


def print_summary(rounds: list[Round], backlog: int, repeat: int) -> None:
    rows = summary(rounds)
    print(
        f"\n{HIGH} tasks at priority 9 (priority) or 0 (fifo) after {backlog} at 0, "
        f"worker concurrency 2, {repeat} round(s); medians over rounds"
    )
    print(
        f"{'broker':<9} {'mode':<9} {'done before':>11} {'to last':>8} {'rank med':>9} "
        f"{'rank worst':>11} "
        f"{'[min-max]':>11} "
        f"{'wait med ms':>12} {'wait worst ms':>14} {'backlog s':>10}"
    )
    for row in rows:
        low, high = row["rank_worst_range"]
        print(
            f"{row['broker']:<9} {row['mode']:<9} {row['done_before']:>11.0f} "
            f"{row['to_last']:>8.0f} {row['rank_median']:>9.0f} "
            f"{row['rank_worst']:>11.0f} {f'[{low}-{high}]':>11} {row['wait_ms_median']:>12.0f} "
            f"{row['wait_ms_worst']:>14.0f} {row['drain_s']:>10.2f}"
        )


if __name__ == "__main__":
    main()
