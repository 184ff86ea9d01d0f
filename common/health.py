"""Whether a service is healthy, judged from its heartbeat: one verdict, one line saying why.

Healthy means started, connected and making progress: the service's last completed pass
is younger than ``TREADLE_HEALTH_STALE_SECONDS``. Otherwise the line names what is wrong,
in the order an operator would ask: is there a heartbeat at all, is the process that
wrote it still there, has it stopped, is it still starting (and waiting for what), or
has it stopped making progress (and the error of its latest failed pass). Pure: the
caller reads the file and tells the time and whether a process id is alive.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from treadle.common.heartbeat import Heartbeat, HeartbeatState, ServiceName

__all__ = ["Verdict", "judge"]


@dataclass(frozen=True)
class Verdict:
    """The answer of ``treadle health``: healthy or not, and the one line saying why."""

    healthy: bool
    line: str


def _seconds(seconds: float) -> str:
    seconds = max(seconds, 0.0)
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 600:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min"


def judge(
    service: ServiceName,
    heartbeat: Heartbeat | None,
    *,
    path: Path,
    now: datetime,
    stale_after: float,
    host: str,
    alive: Callable[[int], bool],
) -> Verdict:
    """The verdict on ``service`` from its heartbeat (``None``: no file at ``path``).

    ``alive(pid)`` is asked only when the heartbeat was written on ``host`` (this host):
    a process id means nothing elsewhere.
    """
    command = f"`treadle {service.value}`"
    if heartbeat is None:
        return Verdict(
            False,
            f"{service.value} is not running here: no heartbeat at {path} ({command} writes "
            "it once started, to TREADLE_HEALTH_DIR)",
        )
    who = f"{service.value} (pid {heartbeat.pid})"
    written = _seconds((now - heartbeat.written_at).total_seconds())
    if heartbeat.state is HeartbeatState.STOPPED:
        return Verdict(False, f"{who} stopped {written} ago")
    if heartbeat.host == host and not alive(heartbeat.pid):
        return Verdict(
            False,
            f"{who} is gone: it exited without stopping cleanly (its heartbeat was last "
            f"written {written} ago)",
        )
    if heartbeat.state is HeartbeatState.STARTING:
        since = _seconds((now - heartbeat.started_at).total_seconds())
        waiting = heartbeat.problem or heartbeat.connected_to or "connecting"
        return Verdict(False, f"{who} is starting (for {since}): {waiting}")
    last = heartbeat.progress_at or heartbeat.started_at
    idle = (now - last).total_seconds()
    if idle > stale_after:
        why = f": {heartbeat.problem}" if heartbeat.problem else ""
        return Verdict(
            False,
            f"{who} has made no progress for {_seconds(idle)} "
            f"(TREADLE_HEALTH_STALE_SECONDS={stale_after:g}){why}",
        )
    connected = f"; {heartbeat.connected_to}" if heartbeat.connected_to else ""
    trouble = f"; its latest pass failed: {heartbeat.problem}" if heartbeat.problem else ""
    return Verdict(True, f"{who} is healthy: progress {_seconds(idle)} ago{connected}{trouble}")
