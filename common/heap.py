"""Keep a long-running process's start-up objects out of the garbage collector's way.

A Treadle process starts by importing SQLAlchemy, Celery, pydantic and Jinja, loading its
packs and compiling its statements: hundreds of thousands of objects that live as long as
the process. CPython's full collection (generation 2) walks every one of them each time it
runs, and a busy process runs it every few seconds: a with_items of 5000 in embedded mode
spent about 0.35 s of its 2 s in those walks (``docs/scaling.md``). :func:`freeze_start_up`
moves what start-up left alive into the collector's permanent generation (``gc.freeze``),
which no collection walks, so a full collection only looks at what the work itself made.

Each command calls it when its start-up is done: ``treadle scheduler`` before its loop,
``treadle worker`` before its pool forks (the children inherit the frozen objects, and pages
holding them stay shared with the parent instead of being copied when a collection touches
them), ``treadle run`` and the other embedded commands once their runner is open. It acts
only in a process that ``treadle``'s own entry point started (:func:`claim_process`): a
command run inside another program (tests run the CLI in-process, an application may embed
it) leaves that program's heap alone. Objects frozen are still freed when their last
reference goes; only a cycle among them would stay, and start-up's garbage is collected
just before.
"""

from __future__ import annotations

import gc
import logging

log = logging.getLogger("treadle.heap")

_claimed = [False]  # one process, one heap: set once by the entry point


def claim_process() -> None:
    """Say that this process is a ``treadle`` command's own (its console entry point, or a
    benchmark standing in for one), so :func:`freeze_start_up` may act."""
    _claimed[0] = True


def freeze_start_up() -> int:
    """In a claimed process, collect start-up's garbage, then freeze what is left; returns
    how many objects were frozen (0 in a process not claimed)."""
    if not _claimed[0]:
        return 0
    gc.collect()
    before = gc.get_freeze_count()
    gc.freeze()
    frozen = gc.get_freeze_count() - before
    log.debug("%d start-up objects frozen out of the garbage collector's walks", frozen)
    return frozen


__all__ = ["claim_process", "freeze_start_up"]
