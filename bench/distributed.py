"""Distributed speed: Treadle's services against stock Celery, in the same run (issue 11).

Sides, each measured ``--repeat`` times (default 5), rounds alternating (Treadle, stock,
same-settings, [other Treadle], Treadle, ...) so machine noise hits every side alike; only
one side's processes run at a time, and each round starts them afresh:

* **treadle**: one ``treadle scheduler`` and one ``treadle worker --concurrency 2`` on a
  fresh PostgreSQL database each round (one RabbitMQ vhost per side), driven through
  ``treadle.Client`` by ``bench/treadle_driver.py``. Walls run from the first start to the
  last run's ``finished_at`` in the database.
* **stock celery** (``bench/stock_celery.py``): what a team that picks Celery instead runs,
  Celery's defaults with a Redis result backend as its first-steps tutorial sets it up
  (acks early, prefetch multiplier 4, default queue ``celery``), worker ``celery -A
  stock_celery worker --pool prefork --concurrency 2``, on a throwaway vhost and Redis
  database. Walls run from the first ``apply_async`` to the last ``get()``.
* **same-settings celery** (``bench/bare_celery.py``): Celery with Treadle's own broker and
  worker settings (quorum queue, publish confirms, acks late, prefetch 1, rpc backend).
* **other** (``--compare-with PATH``): another checkout of Treadle, run with its own venv
  (``PATH/.venv/bin/treadle`` and ``python``) exactly as this one, to compare two versions.
* **multi** (``--also-schedulers N``): this checkout with N ``treadle scheduler`` processes
  sharing the work (``--schedulers N`` runs every Treadle side so), for docs/scaling.md.
* **classic** (``--also-classic-results``): this checkout, ``TREADLE_RESULTS_QUEUE_TYPE=classic``.

Workloads, Treadle vs Celery: a with_items of 2000 no-ops vs a group of 2000 (tasks/s); a
chain of 200 vs a chain of 200 (wall); 100 runs of a 10-task chain started at once vs 100
chains of 10 (wall); 1000 runs of a 10-task chain vs 1000 chains of 10 (tasks per minute);
and, for Treadle, completion -> successor dispatch (the attempt's ``finished_at`` on the
worker to the outbox row's ``sent_at`` in the scheduler), p50 and p95, for the chain alone
and under the 100 runs. Each figure is the median of the side's rounds, with min-max; each
ratio is Treadle's median over the other side's. Targets (issue 11, 2-core machine):

* with_items 2000: throughput at least 0.8x stock Celery's group of 2000;
* chain of 200: wall at most 2x stock Celery's; completion -> dispatch p50 at most 4 ms;
* 100 x 10-chain: wall at most 1.5x stock Celery's;
* 1000 concurrent 10-task workflows: 10,000 tasks a minute or more.

Needs PostgreSQL, RabbitMQ and Redis (``treadle.testing.services``; 127.0.0.1 by default).
Process logs go to ``/tmp/treadle-bench-distributed/``.

    .venv/bin/python bench/distributed.py [--repeat 5] [--json FILE] [--compare-with PATH]
    .venv/bin/python bench/distributed.py --quick        # tiny sizes, one round: a smoke test
    .venv/bin/python bench/distributed.py --treadle-only
    .venv/bin/python bench/distributed.py --treadle-only --also-schedulers 2
    .venv/bin/python bench/distributed.py --also-classic-results
"""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from treadle.testing import (
    throwaway_postgres_database,
    throwaway_rabbitmq_vhost,
    throwaway_redis_database,
)
from treadle.testing.processes import treadle_environment
from treadle_driver import SHORT_CHAIN

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
LOGS = Path(tempfile.gettempdir()) / "treadle-bench-distributed"
CELERY = str(Path(sys.executable).parent / "celery")


@dataclass(frozen=True)
class Sizes:
    items: int = 2000  # with_items vs group
    chain: int = 200  # one chain
    many: int = 100  # 10-task chains started at once
    concurrent: int = 1000  # 10-task chains started at once, for tasks per minute


QUICK = Sizes(items=100, chain=20, many=10, concurrent=20)


@dataclass(frozen=True)
class Side:
    name: str
    label: str
    run: Callable[[str], dict[str, Any]]  # one round (its tag names the logs) -> raw figures


@contextmanager
def processes(tag: str, *commands: tuple[str, Sequence[str], dict[str, str]]) -> Iterator[None]:
    """Run each ``(name, argv, env)`` in a session of its own, logging to ``LOGS``; on exit
    SIGTERM each, wait, then SIGKILL what is left of its session (prefork children)."""
    LOGS.mkdir(exist_ok=True)
    started: list[subprocess.Popen[bytes]] = []
    try:
        for name, argv, env in commands:
            with (LOGS / f"{tag}-{name}.log").open("wb") as log:
                started.append(
                    subprocess.Popen(
                        list(argv),
                        env=env,
                        cwd=BENCH,
                        stdin=subprocess.DEVNULL,
                        stdout=log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
        yield
    finally:
        for process in started:
            if process.poll() is None:
                process.terminate()
        for process in started:
            with suppress(subprocess.TimeoutExpired):
                process.wait(30)
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def revision(checkout: Path) -> str:
    done = subprocess.run(
        ["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "?"


# -- the sides -------------------------------------------------------------------------------


def treadle_side(
    name: str,
    checkout: Path,
    stack: ExitStack,
    sizes: Sizes,
    schedulers: int = 1,
    *,
    results_queue_type: str = "quorum",
) -> Side:
    """Treadle from ``checkout``'s venv: its ``treadle`` services (``schedulers`` scheduler
    processes sharing the database and broker, ``TREADLE_RESULTS_QUEUE_TYPE`` =
    ``results_queue_type``), driven by its Python."""
    binaries = checkout / ".venv" / "bin"
    if not (binaries / "treadle").exists():
        raise SystemExit(f"no Treadle venv at {binaries} (expected treadle and python there)")
    broker_url = stack.enter_context(throwaway_rabbitmq_vhost(f"{name}_bench"))

    def run(tag: str) -> dict[str, Any]:
        treadle = str(binaries / "treadle")
        with throwaway_postgres_database(f"{name}_bench") as database_url:
            env = treadle_environment(  # (a checkout without the setting ignores it)
                None,
                database_url=database_url,
                broker_url=broker_url,
                log_level="WARNING",
                results_queue_type=results_queue_type,
            )
            subprocess.run([treadle, "db", "upgrade"], env=env, check=True, capture_output=True)
            worker = [treadle, "worker", "--concurrency", "2", "--loglevel", "WARNING"]
            services = [
                (f"scheduler{i + 1}", [treadle, "scheduler"], env) for i in range(schedulers)
            ]
            with processes(tag, *services, ("worker", worker, env)):
                driven = subprocess.run(
                    [
                        str(binaries / "python"),
                        str(BENCH / "treadle_driver.py"),
                        database_url,
                        json.dumps(asdict(sizes)),
                    ],
                    env=env,
                    cwd=BENCH,
                    capture_output=True,
                    text=True,
                    check=False,
                )
        if driven.returncode != 0:
            raise SystemExit(f"{tag}: the driver failed (logs in {LOGS}):\n{driven.stderr[-4000:]}")
        return json.loads(driven.stdout.splitlines()[-1])  # type: ignore[no-any-return]

    label = f"{name} {revision(checkout)}" + (f" x{schedulers} sched" if schedulers > 1 else "")
    label += f" {results_queue_type} results" if results_queue_type != "quorum" else ""
    return Side(name, label, run)


def celery_round(
    tag: str, worker: Sequence[str], env: dict[str, str], noop: Any, sizes: Sizes
) -> dict[str, Any]:
    """The same workloads as Treadle's, as Celery canvases of ``noop`` (a signature)."""
    from celery import chain, group

    results: dict[str, Any] = {"start": {}}
    with processes(tag, ("worker", worker, env)):
        noop.clone().apply_async().get(timeout=120)  # waits out the worker's start-up
        started = time.perf_counter()
        group(noop.clone() for _ in range(sizes.items)).apply_async().get(timeout=900)
        results["with_items"] = time.perf_counter() - started
        started = time.perf_counter()
        chain(*(noop.clone() for _ in range(sizes.chain))).apply_async().get(timeout=900)
        results["chain"] = time.perf_counter() - started
        for name, runs in (("many", sizes.many), ("concurrent", sizes.concurrent)):
            started = time.perf_counter()
            pending = [
                chain(*(noop.clone() for _ in range(SHORT_CHAIN))).apply_async()
                for _ in range(runs)
            ]
            results["start"][name] = time.perf_counter() - started
            for result in pending:
                result.get(timeout=900)
            results[name] = time.perf_counter() - started
    return results


def stock_side(stack: ExitStack, sizes: Sizes) -> Side:
    """Stock Celery (``bench/stock_celery.py``) on a throwaway vhost and Redis database."""
    broker = stack.enter_context(throwaway_rabbitmq_vhost("stock_bench"))
    os.environ["STOCK_CELERY_BROKER"] = broker.replace("amqp://", "pyamqp://", 1)
    os.environ["STOCK_CELERY_BACKEND"] = stack.enter_context(throwaway_redis_database())
    import stock_celery  # reads the two variables just set, as its worker does

    worker = [CELERY, "-A", "stock_celery", "worker", "--pool", "prefork", "--concurrency", "2"]
    noop = stock_celery.noop.s()
    return Side(
        "stock",
        "stock celery",
        lambda tag: celery_round(tag, worker, dict(os.environ), noop, sizes),
    )


def bare_side(stack: ExitStack, sizes: Sizes) -> Side:
    """Celery with Treadle's settings (``bench/bare_celery.py``) on a throwaway vhost."""
    import bare_celery

    broker = stack.enter_context(throwaway_rabbitmq_vhost("bare_bench"))
    env = dict(os.environ, BARE_CELERY_BROKER=broker)
    options = (
        f"-A bare_celery worker -c 2 -Q {bare_celery.QUEUE} --prefetch-multiplier 1 -l WARNING"
    )
    worker = [CELERY, *options.split()]
    noop = bare_celery.make_app(broker).signature("bare.noop", queue=bare_celery.QUEUE)
    return Side(
        "bare", "same-settings celery", lambda tag: celery_round(tag, worker, env, noop, sizes)
    )


# -- figures ---------------------------------------------------------------------------------

#: key -> (label, unit, format); each is one figure per round (see ``figure``)
FIGURES: dict[str, tuple[str, str, str]] = {
    "with_items": ("with_items {items} vs group {items}", "tasks/s", "{:.0f}"),
    "chain": ("chain of {chain}", "s", "{:.2f}"),
    "many": ("{many} x 10-chain at once", "s", "{:.2f}"),
    "concurrent": ("{concurrent} concurrent x 10 tasks", "tasks/min", "{:,.0f}"),
    "gap_chain_p50": ("chain: completion->dispatch p50", "ms", "{:.1f}"),
    "gap_chain_p95": ("chain: completion->dispatch p95", "ms", "{:.1f}"),
    "gap_many_p50": ("{many} x 10: completion->dispatch p50", "ms", "{:.1f}"),
    "gap_many_p95": ("{many} x 10: completion->dispatch p95", "ms", "{:.1f}"),
}

#: key -> (side the ratio is taken against, or None for Treadle's own median; ">=" or "<=";
#: the bound; how the issue says it)
TARGETS: dict[str, tuple[str | None, str, float, str]] = {
    "with_items": ("stock", ">=", 0.8, "throughput >= 0.8x stock"),
    "chain": ("stock", "<=", 2.0, "wall <= 2x stock"),
    "many": ("stock", "<=", 1.5, "wall <= 1.5x stock"),
    "concurrent": (None, ">=", 10_000, ">= 10,000 tasks/min"),
    "gap_chain_p50": (None, "<=", 4.0, "p50 <= 4 ms"),
}


def gap(raw: dict[str, Any], workload: str, share: float) -> float | None:
    """The nearest-rank percentile of a round's completion -> dispatch gaps (ms)."""
    gaps = sorted(raw.get("gaps", {}).get(workload) or [])
    return gaps[max(math.ceil(len(gaps) * share) - 1, 0)] if gaps else None


def figure(key: str, raw: dict[str, Any], sizes: Sizes) -> float | None:
    """One round's figure ``key`` from its raw results (None: the side does not measure it)."""
    if key.startswith("gap_"):
        _, workload, percentile = key.split("_")
        return gap(raw, workload, int(percentile[1:]) / 100)
    if key == "with_items":
        return sizes.items / raw[key]  # type: ignore[no-any-return]
    if key == "concurrent":
        return sizes.concurrent * SHORT_CHAIN * 60 / raw[key]  # type: ignore[no-any-return]
    return raw.get(key)


def figures(rounds: list[dict[str, Any]], sizes: Sizes) -> dict[str, list[float]]:
    """key -> the figure of each round (keys a side does not measure are left out)."""
    found: dict[str, list[float]] = {}
    for key in FIGURES:
        values = [figure(key, raw, sizes) for raw in rounds]
        if all(v is not None for v in values):
            found[key] = [float(v) for v in values if v is not None]
    return found


def cell(key: str, values: list[float] | None) -> str:
    if not values:
        return "-"
    form = FIGURES[key][2]
    median, low, high = statistics.median(values), min(values), max(values)
    spread = f" [{form.format(low)}-{form.format(high)}]" if len(values) > 1 else ""
    return form.format(median) + spread


def report(
    sides: list[Side], measured: dict[str, dict[str, list[float]]], sizes: Sizes
) -> dict[str, Any]:
    """Print the figures and the ratios of medians; return the summary for ``--json``."""
    mine = measured[sides[0].name]
    medians = {s: {k: statistics.median(v) for k, v in f.items()} for s, f in measured.items()}
    width = 38
    header = f"\n{'median [min-max]':<{width}} {'unit':<9}" + "".join(
        f" {s.label:<24}" for s in sides
    )
    print(header.rstrip())
    for key, (label, unit, _) in FIGURES.items():
        row = f"{label.format(**asdict(sizes)):<{width}} {unit:<9}"
        row += "".join(f" {cell(key, measured[s.name].get(key)):<24}" for s in sides)
        print(row.rstrip())
    others = sides[1:]
    print(
        f"\n{'ratio of medians: ' + sides[0].name + ' / other':<{width + 10}}"
        + "".join(f" {'vs ' + s.name:<10}" for s in others)
        + "  target (issue 11)"
    )
    ratios: dict[str, dict[str, float]] = {}
    for key, (label, unit, form) in FIGURES.items():
        if key not in mine:
            continue
        ratios[key] = {
            s.name: medians[sides[0].name][key] / medians[s.name][key]
            for s in others
            if medians[s.name].get(key)
        }
        row = f"{label.format(**asdict(sizes)):<{width + 10}}"
        row += "".join(
            f" {f'{ratios[key][s.name]:.2f}x' if s.name in ratios[key] else '-':<10}"
            for s in others
        )
        if key in TARGETS:
            against, op, bound, said = TARGETS[key]
            value = ratios[key].get(against) if against else medians[sides[0].name][key]
            if value is None:
                row += f"  {said}: not measured"
            else:
                met = value >= bound if op == ">=" else value <= bound
                shown = f"{value:.2f}x" if against else f"{form.format(value)} {unit}"
                row += f"  {said}: {'met' if met else 'MISSED'} ({shown})"
        print(row.rstrip())
    return {"medians": medians, "ratios": ratios}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, help="rounds per side (default 5; 1 with --quick)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one round: a smoke test")
    parser.add_argument(
        "--treadle-only", action="store_true", help="no Celery sides (Treadle and --compare-with)"
    )
    parser.add_argument("--json", type=Path, help="write every raw figure and the summary here")
    parser.add_argument(
        "--compare-with",
        type=Path,
        metavar="PATH",
        help="another Treadle checkout (with its .venv) to run as one more alternating side",
    )
    parser.add_argument(
        "--schedulers",
        type=int,
        default=1,
        help="scheduler processes on each Treadle side (default 1)",
    )
    parser.add_argument(
        "--also-schedulers",
        type=int,
        metavar="N",
        help="one more side: this checkout with N scheduler processes (docs/scaling.md)",
    )
    parser.add_argument(
        "--also-classic-results", action="store_true", help="one more side, classic results"
    )
    args = parser.parse_args()
    sizes = QUICK if args.quick else Sizes()
    repeat = args.repeat or (1 if args.quick else 5)
    with ExitStack() as stack:
        sides = [treadle_side("treadle", ROOT, stack, sizes, args.schedulers)]
        if not args.treadle_only:
            sides += [stock_side(stack, sizes), bare_side(stack, sizes)]
        if args.compare_with:
            other = args.compare_with.resolve()
            sides.append(treadle_side("other", other, stack, sizes, args.schedulers))
        if args.also_schedulers:
            sides.append(treadle_side("multi", ROOT, stack, sizes, args.also_schedulers))
        if args.also_classic_results:
            sides.append(
                treadle_side(
                    "classic", ROOT, stack, sizes, args.schedulers, results_queue_type="classic"
                )
            )
        rounds: dict[str, list[dict[str, Any]]] = {side.name: [] for side in sides}
        for index in range(repeat):
            for side in sides:
                began = time.perf_counter()
                raw = side.run(f"{side.name}-{index + 1}")
                raw["ended_at"] = datetime.now(UTC).isoformat()
                rounds[side.name].append(raw)
                print(
                    f"round {index + 1}/{repeat} {side.label}: {time.perf_counter() - began:.1f} s",
                    file=sys.stderr,
                    flush=True,
                )
    measured = {name: figures(raws, sizes) for name, raws in rounds.items()}
    print(
        f"{repeat} round(s) per side, alternating; sizes {asdict(sizes)}"
        + (" (--quick: the targets are for the full sizes)" if args.quick else "")
    )
    summary = report(sides, measured, sizes)
    if args.json:
        document = {
            "argv": sys.argv[1:],
            "cpus": os.cpu_count(),
            "sizes": asdict(sizes),
            "repeat": repeat,
            "sides": {s.name: s.label for s in sides},
            "rounds": rounds,
            "figures": measured,
            **summary,
        }
        args.json.write_text(json.dumps(document, indent=1) + "\n")
        print(f"raw figures written to {args.json}")


if __name__ == "__main__":
    main()
