"""core.sleep: holds a worker for a while (for examples, tests and crude pacing).

To wait without holding a worker, use a task's ``delay`` instead: the scheduler owns it.
"""

from __future__ import annotations

import time


def sleep(seconds: float) -> dict[str, float]:
    time.sleep(seconds)
    return {"slept": seconds}
