"""How a scheduler loop waits after a failed step: doubling pauses, logged once in full.

``treadle scheduler`` and the embedded scheduler inside ``treadle api`` both step in a
loop; a step that fails (the database or broker gone for a while) is retried after a
pause that doubles up to :data:`MAX_PAUSE_SECONDS`, with a warning each time and the
traceback only the first time, so an outage neither spins the CPU nor floods the log.
"""

from __future__ import annotations

import logging

__all__ = ["MAX_PAUSE_SECONDS", "pause_after_failure"]

#: The longest pause between two tries of a failing step.
MAX_PAUSE_SECONDS = 30.0


def pause_after_failure(
    log: logging.Logger, what: str, exc: Exception, *, failures: int, poll_interval: float
) -> float:
    """Log the ``failures``-th failure in a row of ``what`` and return the seconds to wait."""
    pause = min(poll_interval * 2.0 ** (failures - 1), MAX_PAUSE_SECONDS)
    text = str(exc).strip()
    log.warning(
        "%s failed (%s: %s); retrying in %g s",
        what,
        type(exc).__name__,
        text.splitlines()[0] if text else "",
        pause,
        exc_info=failures == 1,  # the traceback once, not at every retry
    )
    return pause
