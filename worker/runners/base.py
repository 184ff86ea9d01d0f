"""What every runner is given and must provide.

A runner turns one validated call of an action into a JSON-able result, or raises. It is
chosen by the action's ``runner_type``; :func:`treadle.worker.execute.execute` does all the
checking around it, so a runner only knows how to run its kind of action.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

from treadle.common.messages import TaskDispatch
from treadle.common.secret_box import SECRET_KEY_VARIABLE, Keyring, SecretKeyMissing
from treadle.common.settings import Settings
from treadle.common.spec import ActionSpec
from treadle.worker.errors import ActionError

# Child processes and requests get this much longer than the task's own timeout, so the
# scheduler's timer (which marks the task timed out) normally fires first.
TIMEOUT_GRACE_SECONDS = 5.0


def default_worker_name() -> str:
    """``<hostname>:<pid>``: names the process that ran an attempt."""
    return f"{socket.gethostname()}:{os.getpid()}"


def no_secret_key() -> Keyring:
    raise SecretKeyMissing(
        f"this worker has no key to decrypt secrets: set {SECRET_KEY_VARIABLE} to the "
        "scheduler's key"
    )


@dataclass(frozen=True)
class RunnerSettings:
    """What a worker process allows its runners to do.

    ``shell_enabled`` gates the shell runner (off by default: it runs arbitrary commands);
    ``max_payload_bytes`` bounds an attempt's input and result as JSON; ``secret_keys``
    gives the keys that decrypt secrets in dispatches; ``capture_output_bytes`` is how
    much of an action's stdout, and of its stderr, an attempt keeps (0: none).
    """

    shell_enabled: bool = False
    max_payload_bytes: int = 1024 * 1024
    capture_output_bytes: int = 65536
    worker_name: str = field(default_factory=default_worker_name)
    #: The keys that decrypt the secrets a dispatch carries (``TREADLE_SECRET_KEY``),
    #: asked for only when one does; raises ConfigurationError when there are none.
    secret_keys: Callable[[], Keyring] = field(default=no_secret_key, compare=False, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, *, worker_name: str | None = None) -> RunnerSettings:
        configured = settings.secret_key.get_secret_value() if settings.secret_key else ""
        return cls(
            shell_enabled=settings.shell_enabled,
            max_payload_bytes=settings.limits.max_payload_bytes,
            capture_output_bytes=settings.capture_output_bytes,
            worker_name=worker_name or default_worker_name(),
            secret_keys=cache(lambda: Keyring.parse(configured)) if configured else no_secret_key,
        )


@dataclass(frozen=True)
class ActionCall:
    """The attempt a runner is working on and the settings it runs under."""

    dispatch: TaskDispatch
    settings: RunnerSettings

    def time_limit(self, requested: float | None) -> float | None:
        """Seconds a child process or request may take: its own ``timeout`` parameter,
        capped by the task's timeout (plus a grace period) when the task has one."""
        task_limit = self.dispatch.timeout_seconds
        if task_limit is not None:
            task_limit += TIMEOUT_GRACE_SECONDS
        limits = [t for t in (requested, task_limit) if t is not None]
        return min(limits) if limits else None


def seconds_parameter(params: dict[str, Any], name: str = "timeout") -> float | None:
    """A parameter holding a number of seconds (``None`` when absent)."""
    value = params.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ActionError("InvalidInput", f"parameter '{name}' must be a number of seconds >= 0")
    return float(value)


class Runner(Protocol):
    """Runs one call of an action with validated parameters; returns its result or raises.

    Raise :class:`treadle.worker.errors.ActionError` for failures with a known type; any
    other exception is reported under its class name.
    """

    def run(self, action: ActionSpec, params: dict[str, Any], context: ActionCall) -> Any: ...
